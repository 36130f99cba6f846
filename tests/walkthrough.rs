//! The user's document (`api-getting-started.md`), snippet by snippet, against a live server.

#[tokio::test]
async fn the_getting_started_document_works_as_written() {
    integration_tests::walkthrough::getting_started(&integration_tests::spawn_app().await).await;
}
