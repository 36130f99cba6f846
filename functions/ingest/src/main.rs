//! `POST /ingest` as one Lambda function: uploaded files read, embedded and stored.

#[tokio::main]
async fn main() -> Result<(), opengpts::serve::Error> {
    opengpts::serve::lambda(opengpts::api::function_routes::ingest()).await
}
