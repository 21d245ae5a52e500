//! How a response reaches the socket, as under `spin up`.
//!
//! Spin's HTTP server (crates/trigger-http, on hyper's HTTP/1 server without
//! `TCP_NODELAY`) hands the response to hyper as soon as the guest sets its
//! `response-outparam`, while the guest may still be writing the body. hyper
//! writes the head, polls the body, and when no body data is there yet it
//! flushes the head alone; the body then follows as a second small segment,
//! which Nagle's algorithm holds until the client ACKs the first, and a client
//! delays that ACK by up to 40 ms. Measured under `spin up`: every response of
//! a component that set the outparam before writing its body stalled so.
//!
//! In this host the guest runs on another thread of the runtime and often wins
//! that race, which hid the stall. So the host decides it the way Spin
//! loses it: whatever body data is not already there when the response is
//! handed over goes out after the head has been flushed on its own. A body
//! written (and finished) before the hand-over still leaves with the head in
//! one write, as under Spin.

use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use hyper::body::{Body, Bytes, Frame, SizeHint};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// Whether the body was there when the guest handed the response over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtHandover {
    /// The first frame (or the end) was ready: head and body leave together.
    Ready,
    /// Nothing was written yet: the head is flushed alone first.
    Streamed,
}

impl AtHandover {
    /// The word the request log line carries.
    pub fn label(self) -> &'static str {
        match self {
            AtHandover::Ready => "body-ready",
            AtHandover::Streamed => "body-after-head",
        }
    }
}

/// What the guest's body fails with.
type BodyError = <HyperOutgoingBody as Body>::Error;
type Polled = Poll<Option<Result<Frame<Bytes>, BodyError>>>;

/// The guest's body, with the first poll decided at hand-over.
pub struct SpinOrder {
    inner: HyperOutgoingBody,
    /// What the inner body had at hand-over, given to hyper's first poll.
    first: Option<Polled>,
    /// Hyper's first poll must see no data, so that it flushes the head.
    hold_first: bool,
}

impl SpinOrder {
    /// Looks at the body once, without waiting, at the moment of hand-over.
    pub fn at_handover(mut inner: HyperOutgoingBody) -> (SpinOrder, AtHandover) {
        let mut cx = Context::from_waker(Waker::noop());
        match Pin::new(&mut inner).poll_frame(&mut cx) {
            Poll::Pending => (
                SpinOrder {
                    inner,
                    first: None,
                    hold_first: true,
                },
                AtHandover::Streamed,
            ),
            ready => (
                SpinOrder {
                    inner,
                    first: Some(ready),
                    hold_first: false,
                },
                AtHandover::Ready,
            ),
        }
    }
}

impl Body for SpinOrder {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Polled {
        if let Some(first) = self.first.take() {
            return first;
        }
        if std::mem::take(&mut self.hold_first) {
            // hyper flushes what it has (the head) and polls again at once.
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && !self.hold_first && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        if self.first.is_some() {
            SizeHint::default()
        } else {
            self.inner.size_hint()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full};

    /// A body whose data arrives only at its second poll, as a guest still writing.
    struct Late(u8);

    impl Body for Late {
        type Data = Bytes;
        type Error = BodyError;
        fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Polled {
            self.0 += 1;
            match self.0 {
                1 => {
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
                2 => Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"late"))))),
                _ => Poll::Ready(None),
            }
        }
    }

    #[tokio::test]
    async fn a_body_already_there_is_given_at_the_first_poll() {
        let full =
            Full::new(Bytes::from_static(b"page")).map_err(|never| -> BodyError { match never {} });
        let (mut body, when) = SpinOrder::at_handover(full.boxed_unsync());
        assert_eq!(when, AtHandover::Ready);
        let mut cx = Context::from_waker(Waker::noop());
        let Poll::Ready(Some(Ok(frame))) = Pin::new(&mut body).poll_frame(&mut cx) else {
            panic!("the data at the first poll");
        };
        assert_eq!(frame.into_data().unwrap(), Bytes::from_static(b"page"));
    }

    #[tokio::test]
    async fn a_body_not_yet_written_makes_hypers_first_poll_wait() {
        let (mut body, when) = SpinOrder::at_handover(Late(0).boxed_unsync());
        assert_eq!(when, AtHandover::Streamed);
        let mut cx = Context::from_waker(Waker::noop());
        assert!(
            Pin::new(&mut body).poll_frame(&mut cx).is_pending(),
            "held back once, though the data is there now"
        );
        let collected = body.collect().await.unwrap().to_bytes();
        assert_eq!(collected, Bytes::from_static(b"late"));
    }
}
