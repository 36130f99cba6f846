//! Every route in one process: the local server on 127.0.0.1:8100, or one Lambda function.

#[tokio::main]
async fn main() -> Result<(), opengpts::serve::Error> {
    opengpts::serve::api().await
}
