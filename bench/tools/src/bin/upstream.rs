//! The minimal upstream of the load test: HTTP/1.1 keep-alive, every request answered 200 with
//! the same 1 KiB body. Kept as cheap as hyper allows so it is never the bottleneck.
//!
//! Usage: `upstream ADDR` (prints one line `listening ADDR` when ready).

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Response, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const BODY: [u8; 1024] = [b'x'; 1024];

#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18001".into());
    let listener = TcpListener::bind(&addr).await.expect("bind");
    println!("listening {}", listener.local_addr().unwrap());
    let body = Bytes::from_static(&BODY);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(x) => x,
            Err(_) => continue,
        };
        let _ = stream.set_nodelay(true);
        let body = body.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |_req| {
                let body = body.clone();
                async move {
                    let mut r = Response::new(Full::new(body));
                    r.headers_mut().insert(
                        header::CONTENT_TYPE,
                        header::HeaderValue::from_static("text/plain"),
                    );
                    Ok::<_, Infallible>(r)
                }
            });
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
