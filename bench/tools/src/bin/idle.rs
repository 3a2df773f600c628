//! Opens N keep-alive connections to a server, sends one request on each (so each connection
//! has served a request, as a real idle client's would), reads the whole response, then keeps
//! them all open and idle until stdin closes or HOLD seconds pass.
//!
//! Usage: `idle ADDR N PATH [HEADER ...]` — prints `ready opened=N ok=M failed=K` once every
//! connection is established and idle, then `done` when it lets them go.
//! Environment: HOLD (seconds, default 60), PARALLEL (connections being set up at once, 200).

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

async fn one(addr: String, request: Arc<Vec<u8>>) -> std::io::Result<(TcpStream, u16)> {
    let mut s = TcpStream::connect(&addr).await?;
    s.set_nodelay(true)?;
    s.write_all(&request).await?;
    // Read the head, then Content-Length bytes of body.
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 4096];
    let (status, body_len, body_have) = loop {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::Error::other("closed before the response"));
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            let text = String::from_utf8_lossy(&head[..end]).to_ascii_lowercase();
            let status: u16 = text
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let len: usize = text
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            break (status, len, head.len() - end - 4);
        }
    };
    let mut left = body_len.saturating_sub(body_have);
    while left > 0 {
        let n = s.read(&mut buf[..left.min(4096)]).await?;
        if n == 0 {
            return Err(std::io::Error::other("closed in the body"));
        }
        left -= n;
    }
    Ok((s, status))
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: idle ADDR N PATH [HEADER ...]");
        std::process::exit(2);
    }
    let addr = args[1].clone();
    let n: usize = args[2].parse().expect("N");
    let mut request = format!("GET {} HTTP/1.1\r\nHost: {addr}\r\n", args[3]);
    for h in &args[4..] {
        request.push_str(h);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    let request = Arc::new(request.into_bytes());
    let hold: u64 = std::env::var("HOLD")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let parallel: usize = std::env::var("PARALLEL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);

    let gate = Arc::new(Semaphore::new(parallel));
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let addr = addr.clone();
        let request = request.clone();
        let permit = gate.clone().acquire_owned().await.unwrap();
        tasks.push(tokio::spawn(async move {
            let r = one(addr, request).await;
            drop(permit);
            r
        }));
    }
    let mut held = Vec::with_capacity(n);
    let (mut ok, mut failed) = (0usize, 0usize);
    let mut first_error = None;
    for t in tasks {
        match t.await.expect("task") {
            Ok((s, status)) => {
                if status == 200 {
                    ok += 1;
                } else {
                    failed += 1;
                }
                held.push(s);
            }
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(e.to_string());
            }
        }
    }
    println!(
        "ready opened={} ok={ok} failed={failed}{}",
        held.len(),
        first_error
            .map(|e| format!(" first_error={e:?}"))
            .unwrap_or_default()
    );
    // Hold until stdin closes (the script is done measuring) or the time is up.
    let stdin = async {
        let mut line = String::new();
        let _ = BufReader::new(tokio::io::stdin())
            .read_line(&mut line)
            .await;
    };
    tokio::select! {
        () = stdin => {},
        () = tokio::time::sleep(Duration::from_secs(hold)) => {},
    }
    let still_open = held.len();
    drop(held);
    println!("done held={still_open}");
}
