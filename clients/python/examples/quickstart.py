import os

from yadtq import Yadtq

q = Yadtq(os.environ.get("YADTQ_URL", "http://127.0.0.1:8080"), api_key=os.environ["YADTQ_API_KEY"])
task = q.submit_and_wait("multiply", [4, 5])
print(task.status.value, task.result)  # success 20
