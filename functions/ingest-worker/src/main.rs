//! Reads the files uploaded through presigned S3 URLs: the bucket's object-created events.

#[tokio::main]
async fn main() -> Result<(), opengpts::serve::Error> {
    opengpts::serve::ingest_worker().await
}
