//! Serve mode: only the callback API, printing every callback, until Ctrl-C or SIGTERM. With it a
//! hand-made event (curl) shows its answer.

use anyhow::Result;

use super::config::Endpoint;
use super::conversation::ACCOUNT_ID;
use super::server::CallbackServer;

/// Serves callbacks on the endpoint's address until interrupted.
pub async fn run(endpoint: &Endpoint) -> Result<()> {
    let server =
        CallbackServer::start(endpoint.listen, &endpoint.token(), Some(ACCOUNT_ID), true).await?;
    println!(
        "saltedcx-sim: serving the Salted CX callback API on {} (workers: SALTEDCX_API_URL={}); \
         every callback is printed. Ctrl-C stops.",
        server.addr(),
        server.base_url()
    );
    shared::shutdown::signal().await;
    println!(
        "saltedcx-sim: stopped ({} callbacks printed)",
        server.counters().printed
    );
    Ok(())
}
