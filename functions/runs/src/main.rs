//! The `/runs` routes as one Lambda function.

#[tokio::main]
async fn main() -> Result<(), opengpts::serve::Error> {
    opengpts::serve::lambda(opengpts::api::function_routes::runs()).await
}
