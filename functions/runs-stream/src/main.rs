//! `POST /runs/stream` as one Lambda function with response streaming.

#[tokio::main]
async fn main() -> Result<(), opengpts::serve::Error> {
    opengpts::serve::lambda_streaming(opengpts::api::function_routes::runs_stream()).await
}
