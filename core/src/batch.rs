//! Micro-batching of database writes: calls that arrive while earlier ones are
//! being written (or within a short linger) are served by one statement (one
//! round trip, one commit) instead of one each. Under load this is what lets a
//! gateway accept and a worker finish thousands of tasks a second; when idle a
//! call waits at most the linger.

use std::future::Future;
use std::time::Duration;

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Mutex};

/// A running batcher: `call` queues an input and waits for its output.
pub struct Batcher<I, O> {
    tx: mpsc::UnboundedSender<(I, oneshot::Sender<O>)>,
}

impl<I: Send + 'static, O: Send + 'static> Batcher<I, O> {
    /// Starts `parallel` flushing tasks. Each takes the inputs waiting (up to
    /// `max`), waits up to `linger` for more, and calls `flush`, which must
    /// return one output per input, in order. With a zero linger a lone call is
    /// written at once and calls arriving meanwhile form the next batch.
    pub fn spawn<F, Fut>(linger: Duration, max: usize, parallel: usize, flush: F) -> Self
    where
        F: Fn(Vec<I>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<O>> + Send,
    {
        let (tx, rx) = mpsc::unbounded_channel::<(I, oneshot::Sender<O>)>();
        let rx = Arc::new(Mutex::new(rx));
        let flush = Arc::new(flush);
        for _ in 0..parallel.max(1) {
            let (rx, flush) = (rx.clone(), flush.clone());
            tokio::spawn(async move {
                loop {
                    let batch = {
                        let mut rx = rx.lock().await;
                        let Some(first) = rx.recv().await else { return };
                        let mut batch = vec![first];
                        let deadline = tokio::time::Instant::now() + linger;
                        while batch.len() < max {
                            match rx.try_recv() {
                                Ok(item) => batch.push(item),
                                Err(_) if linger.is_zero() => break,
                                Err(_) => match tokio::time::timeout_at(deadline, rx.recv()).await {
                                    Ok(Some(item)) => batch.push(item),
                                    Ok(None) | Err(_) => break,
                                },
                            }
                        }
                        batch
                    };
                    let (inputs, replies): (Vec<I>, Vec<oneshot::Sender<O>>) = batch.into_iter().unzip();
                    let outputs = flush(inputs).await;
                    debug_assert_eq!(outputs.len(), replies.len(), "one output per input");
                    for (reply, out) in replies.into_iter().zip(outputs) {
                        let _ = reply.send(out);
                    }
                }
            });
        }
        Self { tx }
    }

    /// Queues `input` and waits for its output; `None` if the batcher stopped.
    pub async fn call(&self, input: I) -> Option<O> {
        let (reply, rx) = oneshot::channel();
        self.tx.send((input, reply)).ok()?;
        rx.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn concurrent_calls_share_a_flush_and_get_their_own_output() {
        let flushes = Arc::new(AtomicUsize::new(0));
        let f = flushes.clone();
        let b = Arc::new(Batcher::spawn(Duration::from_millis(20), 100, 1, move |xs: Vec<u32>| {
            f.fetch_add(1, Ordering::SeqCst);
            async move { xs.into_iter().map(|x| x * 2).collect() }
        }));
        let outs = futures::future::join_all((0..10).map(|i| {
            let b = b.clone();
            async move { b.call(i).await.unwrap() }
        }))
        .await;
        assert_eq!(outs, (0..10).map(|i| i * 2).collect::<Vec<_>>());
        assert_eq!(flushes.load(Ordering::SeqCst), 1);
    }
}
