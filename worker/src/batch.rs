//! Micro-batching of database writes: calls that arrive within a few
//! milliseconds of each other are served by one statement (one round trip,
//! one commit) instead of one each. Under load this is what lets a worker
//! finish thousands of tasks a second; when idle a call waits at most the linger.

use std::future::Future;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

/// A running batcher: `call` queues an input and waits for its output.
pub struct Batcher<I, O> {
    tx: mpsc::UnboundedSender<(I, oneshot::Sender<O>)>,
}

impl<I: Send + 'static, O: Send + 'static> Batcher<I, O> {
    /// Starts the batching task. `flush` gets up to `max` inputs gathered for
    /// at most `linger` after the first, and must return one output per input,
    /// in order.
    pub fn spawn<F, Fut>(linger: Duration, max: usize, flush: F) -> Self
    where
        F: Fn(Vec<I>) -> Fut + Send + 'static,
        Fut: Future<Output = Vec<O>> + Send,
    {
        let (tx, mut rx) = mpsc::unbounded_channel::<(I, oneshot::Sender<O>)>();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                let deadline = tokio::time::Instant::now() + linger;
                while batch.len() < max {
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(item)) => batch.push(item),
                        Ok(None) | Err(_) => break,
                    }
                }
                let (inputs, replies): (Vec<I>, Vec<oneshot::Sender<O>>) = batch.into_iter().unzip();
                let outputs = flush(inputs).await;
                debug_assert_eq!(outputs.len(), replies.len(), "one output per input");
                for (reply, out) in replies.into_iter().zip(outputs) {
                    let _ = reply.send(out);
                }
            }
        });
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
    use std::sync::Arc;

    #[tokio::test]
    async fn concurrent_calls_share_a_flush_and_get_their_own_output() {
        let flushes = Arc::new(AtomicUsize::new(0));
        let f = flushes.clone();
        let b = Arc::new(Batcher::spawn(Duration::from_millis(20), 100, move |xs: Vec<u32>| {
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
