//! The `/assistants` routes, and the service routes (`/ok`, `/health`, `/openapi.json`, `/docs`),
//! as one Lambda function.

#[tokio::main]
async fn main() -> Result<(), opengpts::serve::Error> {
    opengpts::serve::lambda(opengpts::api::function_routes::assistants()).await
}
