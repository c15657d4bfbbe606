//! One HTTP/1.1 connection per conversation, as Salted CX holds them: opened when the
//! conversation first posts, kept alive between its events, opened again when the ingress closed
//! it (idle timeout, eviction at its connection cap). A post on a connection the ingress closed
//! meanwhile is sent again once on a new connection: a repeated requestId is recognised by the
//! ingress (`202 duplicate`), so nothing is stored twice.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper_util::rt::TokioIo;

use super::client::{Posted, classify};

/// Where and how a conversation's connection posts.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub host: HeaderValue,
    pub path: String,
    pub authorization: HeaderValue,
}

/// A conversation's own connection to the ingress.
pub struct Dedicated {
    target: Target,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Dedicated {
    pub fn new(target: Target) -> Self {
        Self {
            target,
            sender: None,
        }
    }

    /// Posts one event body on this conversation's connection.
    pub async fn post(&mut self, body: Bytes) -> Posted {
        let mut last = Posted::Failed {
            kind: "io",
            message: "not sent".into(),
        };
        for _ in 0..2 {
            let fresh = self.sender.is_none();
            let request = match self.request(body.clone()) {
                Ok(request) => request,
                Err(message) => {
                    return Posted::Failed {
                        kind: "io",
                        message,
                    };
                }
            };
            let sender = match self.ready().await {
                Ok(sender) => sender,
                Err(failed) => return failed,
            };
            match sender.send_request(request).await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let closes = response
                        .headers()
                        .get(hyper::header::CONNECTION)
                        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
                    let posted = match response.into_body().collect().await {
                        Ok(collected) => classify(status, &collected.to_bytes()),
                        Err(err) => Posted::Failed {
                            kind: "io",
                            message: err.to_string(),
                        },
                    };
                    if closes {
                        self.sender = None;
                    }
                    return posted;
                }
                Err(err) => {
                    self.sender = None;
                    last = Posted::Failed {
                        kind: "io",
                        message: err.to_string(),
                    };
                    // A connection that had served requests before may have been closed by the
                    // ingress meanwhile: try once more on a new one.
                    if fresh {
                        return last;
                    }
                }
            }
        }
        last
    }

    /// The connection, opened if needed and ready for a request.
    async fn ready(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, Posted> {
        if let Some(sender) = &mut self.sender
            && sender.ready().await.is_err()
        {
            self.sender = None;
        }
        if self.sender.is_none() {
            self.sender = Some(self.connect().await?);
        }
        self.sender.as_mut().ok_or(Posted::Failed {
            kind: "connect",
            message: "no connection".into(),
        })
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, Posted> {
        let failed = |kind: &'static str| {
            move |err: &dyn std::fmt::Display| Posted::Failed {
                kind,
                message: err.to_string(),
            }
        };
        let stream = tokio::net::TcpStream::connect(self.target.addr)
            .await
            .map_err(|e| failed("connect")(&e))?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| failed("connect")(&e))?;
        tokio::spawn(async move {
            // Ends when the ingress or this conversation closes the connection.
            let _ = connection.await;
        });
        Ok(sender)
    }

    fn request(&self, body: Bytes) -> Result<hyper::Request<Full<Bytes>>, String> {
        hyper::Request::post(&self.target.path)
            .header(HOST, self.target.host.clone())
            .header(AUTHORIZATION, self.target.authorization.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(Full::new(body))
            .map_err(|e| e.to_string())
    }
}
