//! Confidential OpenID Connect client as a Spin HTTP component (work in progress).
