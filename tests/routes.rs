//! One source of truth for routes: `api::Function` says which Lambda function serves which paths.
//! The OpenAPI description, `template.yaml`'s REST API, the `cargo lambda watch` router in
//! `Cargo.toml` and the `functions/` folder are each checked against it, so a route added in one
//! place and forgotten in another fails here.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use opengpts::api::{self, AppState, Function, Routes};
use opengpts::store::MemoryStore;
use serde_json::Value;
use tower::ServiceExt;

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];

fn repository_file(path: &str) -> String {
    let full = format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|error| panic!("{full}: {error}"))
}

/// Every (path, method) served: those the OpenAPI description documents, and the LangGraph
/// API's (which the reference server's captures document, `tests/langgraph/` exercises).
async fn every_operation() -> Vec<(String, String)> {
    let mut operations = documented();
    let langgraph = api::langgraph::routes();
    for path in langgraph.paths() {
        for method in METHODS {
            if serves(&langgraph, method, &concrete(path)).await {
                operations.push((path.to_string(), method.to_string()));
            }
        }
    }
    operations
}

/// Every (path, method) the OpenAPI description documents, in upper-case method names.
fn documented() -> Vec<(String, String)> {
    let spec: Value = serde_json::from_str(&repository_file("core/src/api/openapi.json")).expect("JSON");
    let mut operations = Vec::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            if METHODS.contains(&method.to_uppercase().as_str()) {
                operations.push((path.clone(), method.to_uppercase()));
            }
        }
    }
    operations
}

/// A request path for a route: each `{parameter}` becomes an id.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| if segment.starts_with('{') { "5b8c1b6e-8a5c-4b39-9c1e-0d4ad8f51a11" } else { segment })
        .collect::<Vec<_>>()
        .join("/")
}

/// Whether the routes have a handler for the request (any answer but the router's own 404/405).
async fn serves(routes: &Routes, method: &str, path: &str) -> bool {
    let state = AppState::new(integration_tests::test_config(|_| None), Arc::new(MemoryStore::new())).unwrap();
    let request = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).unwrap())
        .uri(path)
        .body(Body::empty())
        .unwrap();
    let response = api::app(routes.clone(), state).oneshot(request).await.unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    let routed_nowhere = status == StatusCode::NOT_FOUND && body.as_ref() == br#"{"detail":"Not Found"}"#;
    !routed_nowhere && status != StatusCode::METHOD_NOT_ALLOWED
}

/// How specifically a route pattern matches a request path: literal segments count most, a
/// greedy tail least (API Gateway's `{proxy+}`, matchit's `{*path}`), as both routers prefer.
fn specificity(pattern: &str, path: &str) -> Option<(usize, bool)> {
    let patterns: Vec<&str> = pattern.trim_start_matches('/').split('/').collect();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut literals = 0;
    for (index, part) in patterns.iter().enumerate() {
        let greedy = part.starts_with("{*") || part.ends_with("+}");
        if greedy {
            return (segments.len() > index && index == patterns.len() - 1).then_some((literals, false));
        }
        let segment = segments.get(index)?;
        if part.starts_with('{') {
            continue;
        }
        if part != segment {
            return None;
        }
        literals += 1;
    }
    (segments.len() == patterns.len()).then_some((literals, true))
}

fn best_match<'a, T>(candidates: &'a [(String, T)], path: &str) -> Option<&'a (String, T)> {
    candidates
        .iter()
        .filter_map(|candidate| specificity(&candidate.0, path).map(|rank| (rank, candidate)))
        .max_by_key(|(rank, _)| *rank)
        .map(|(_, candidate)| candidate)
}

fn function_named(binary: &str) -> Function {
    function_named_opt(binary).unwrap_or_else(|| panic!("no {binary}"))
}

/// `template.yaml`'s REST API paths, each with its methods and the binary of the function its
/// integration invokes.
fn template_routes() -> Vec<(String, Vec<(String, String)>)> {
    let template: serde_yaml::Value = serde_yaml::from_str(&repository_file("template.yaml")).expect("YAML");
    let resources = &template["Resources"];
    let paths = resources["Api"]["Properties"]["DefinitionBody"]["paths"].as_mapping().expect("the API's paths");
    paths
        .iter()
        .map(|(path, item)| {
            let methods = item
                .as_mapping()
                .unwrap()
                .iter()
                .map(|(method, operation)| {
                    let uri = serde_yaml::to_string(&operation["x-amazon-apigateway-integration"]["uri"]).unwrap();
                    let resource = uri.split("${").nth(3).and_then(|s| s.split(".Arn}").next()).expect("a function");
                    let binary = resources[resource]["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap();
                    let method = method.as_str().unwrap().to_uppercase().replace("X-AMAZON-APIGATEWAY-ANY-METHOD", "*");
                    (method, binary.to_string())
                })
                .collect();
            (path.as_str().unwrap().to_string(), methods)
        })
        .collect()
}

/// The `cargo lambda watch` router: each path pattern with its function (per method or for all).
fn watch_routes() -> Vec<(String, Vec<(String, String)>)> {
    let manifest: toml::Table = repository_file("Cargo.toml").parse().expect("TOML");
    let router = manifest["workspace"]["metadata"]["lambda"]["watch"]["router"].as_table().expect("a router");
    router
        .iter()
        .map(|(path, target)| {
            let functions = match target {
                toml::Value::String(function) => vec![("*".to_string(), function.clone())],
                toml::Value::Array(per_method) => per_method
                    .iter()
                    .map(|entry| {
                        (entry["method"].as_str().unwrap().to_uppercase(), entry["function"].as_str().unwrap().into())
                    })
                    .collect(),
                other => panic!("{path}: {other:?}"),
            };
            (path.clone(), functions)
        })
        .collect()
}

/// The function a router's table sends `method path` to.
fn routed_to(table: &[(String, Vec<(String, String)>)], method: &str, path: &str) -> Option<Function> {
    let (_, methods) = best_match(table, path)?;
    let (_, binary) = methods.iter().find(|(allowed, _)| allowed == method || allowed == "*")?;
    Some(function_named(binary))
}

#[tokio::test]
async fn the_openapi_description_documents_exactly_the_routes_served() {
    let routes = api::routes();
    let served: BTreeSet<&str> =
        routes.paths().iter().copied().filter(|path| !path.starts_with(api::langgraph::PREFIX)).collect();
    let operations = documented();
    let described: BTreeSet<&str> = operations.iter().map(|(path, _)| path.as_str()).collect();
    assert_eq!(served, described, "routes served (left) and documented in openapi.json (right) differ");
    for path in &described {
        for method in METHODS {
            let is_documented = operations.iter().any(|(p, m)| p == path && m == method);
            let concrete = concrete(path);
            assert_eq!(serves(&routes, method, &concrete).await, is_documented, "{method} {path}");
            if *path != "/" {
                assert_eq!(serves(&routes, method, &format!("{concrete}/")).await, is_documented, "{method} {path}/");
            }
        }
    }
}

#[tokio::test]
async fn the_template_sends_every_route_to_a_function_that_serves_it() {
    let template = template_routes();
    for (path, method) in every_operation().await {
        let function = routed_to(&template, &method, &path)
            .unwrap_or_else(|| panic!("template.yaml's API does not route {method} {path}"));
        assert!(serves(&function.routes(), &method, &concrete(&path)).await, "{method} {path} -> {function:?}");
    }
    // Every function the template routes to is one of the code's, and each is reached.
    let reached: BTreeSet<&str> =
        template.iter().flat_map(|(_, methods)| methods.iter().map(|(_, binary)| binary.as_str())).collect();
    let defined: BTreeSet<&str> = Function::ALL.iter().map(|function| function.binary()).collect();
    assert_eq!(reached, defined);
}

#[tokio::test]
async fn the_lambda_watch_router_matches_the_template() {
    let (template, watch) = (template_routes(), watch_routes());
    for (path, method) in every_operation().await {
        let local = routed_to(&watch, &method, &path);
        assert_eq!(local, routed_to(&template, &method, &path), "{method} {path}: Cargo.toml's watch router");
    }
}

#[test]
fn each_function_binary_exists_and_serves_its_own_routes() {
    let folders: BTreeSet<String> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../functions"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    // Beside the HTTP functions: `run-worker` (background runs), `ingest-worker` (files uploaded
    // to S3) and `api` (every route at once, the Function URL deployment).
    let mut expected: BTreeSet<String> = Function::ALL.iter().map(|function| function.binary().to_string()).collect();
    expected.insert("run-worker".into());
    expected.insert("ingest-worker".into());
    expected.insert("api".into());
    let template: serde_yaml::Value = serde_yaml::from_str(&repository_file("template.yaml")).unwrap();
    let deployed: BTreeSet<String> = template["Resources"]
        .as_mapping()
        .unwrap()
        .values()
        .filter(|resource| resource["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|function| function["Metadata"]["BuildProperties"]["Binary"].as_str().expect("a binary").to_string())
        .collect();
    assert_eq!(deployed, expected, "template.yaml's functions");
    assert_eq!(folders, expected, "functions/");
    for function in Function::ALL {
        let main = repository_file(&format!("functions/{}/src/main.rs", function.binary()));
        let routes = format!("function_routes::{}()", function.binary().replace('-', "_"));
        assert!(main.contains(&routes), "functions/{}: not serving {routes}", function.binary());
    }
}

/// `Frontend=function-url` deploys the `api` function, which serves every documented route, behind
/// a streaming Function URL, instead of the REST API and its four functions.
#[tokio::test]
async fn the_function_url_variant_serves_every_route_from_one_streaming_function() {
    let template: serde_yaml::Value = serde_yaml::from_str(&repository_file("template.yaml")).unwrap();
    let resources = template["Resources"].as_mapping().unwrap();
    let condition = |name: &str| template["Resources"][name]["Condition"].as_str().map(str::to_string);
    let api = &template["Resources"]["ApiFunction"];
    assert_eq!(api["Metadata"]["BuildProperties"]["Binary"].as_str(), Some("api"));
    assert_eq!(condition("ApiFunction").as_deref(), Some("UseFunctionUrl"));
    assert_eq!(api["Properties"]["FunctionUrlConfig"]["InvokeMode"].as_str(), Some("RESPONSE_STREAM"));
    assert_eq!(api["Properties"]["FunctionUrlConfig"]["AuthType"].as_str(), Some("NONE"), "the app authenticates");
    for (path, method) in every_operation().await {
        assert!(serves(&api::routes(), &method, &concrete(&path)).await, "{method} {path}");
    }
    // Everything of the REST variant is left out of it; the worker stays in both.
    for (name, resource) in resources {
        let name = name.as_str().unwrap();
        let binary = resource["Metadata"]["BuildProperties"]["Binary"].as_str();
        let rest_only = name == "Api"
            || name.ends_with("InvokePermission")
            || binary.is_some_and(|b| function_named_opt(b).is_some());
        if rest_only {
            assert_eq!(condition(name).as_deref(), Some("UseRestApi"), "{name}");
        }
    }
    assert!(condition("RunWorkerFunction").is_none());
    let base_url = serde_yaml::to_string(&template["Outputs"]["BaseUrl"]["Value"]).unwrap();
    assert!(base_url.contains("ApiFunctionUrl.FunctionUrl") && base_url.contains("UseRestApi"), "{base_url}");
}

fn function_named_opt(binary: &str) -> Option<Function> {
    Function::ALL.into_iter().find(|function| function.binary() == binary)
}

/// CloudFront's path patterns: `*` any run of characters (slashes too), `?` one character.
fn glob_matches(pattern: &[u8], path: &[u8]) -> bool {
    match (pattern.first(), path.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob_matches(&pattern[1..], path) || (!path.is_empty() && glob_matches(pattern, &path[1..])),
        (Some(b'?'), Some(_)) => glob_matches(&pattern[1..], &path[1..]),
        (Some(p), Some(c)) if p == c => glob_matches(&pattern[1..], &path[1..]),
        _ => false,
    }
}

/// With `UiHosting=cloudfront`, one origin serves the UI and the API: every documented API path
/// reaches the API (uncached, cookies forwarded), and the UI's own routes reach its bucket.
#[tokio::test]
async fn the_ui_distribution_sends_every_api_path_to_the_api_and_the_rest_to_the_ui() {
    let template: serde_yaml::Value = serde_yaml::from_str(&repository_file("template.yaml")).unwrap();
    let config = &template["Resources"]["UiDistribution"]["Properties"]["DistributionConfig"];
    let behaviors: Vec<&serde_yaml::Value> = config["CacheBehaviors"].as_sequence().unwrap().iter().collect();
    // CloudFront takes the first behaviour, in order, whose pattern matches; else the default.
    let origin_of = |path: &str| -> (String, Option<String>) {
        let behavior = behaviors
            .iter()
            .find(|b| glob_matches(b["PathPattern"].as_str().unwrap().as_bytes(), path.as_bytes()))
            .copied()
            .unwrap_or(&config["DefaultCacheBehavior"]);
        (
            behavior["TargetOriginId"].as_str().unwrap().to_string(),
            behavior["CachePolicyId"].as_str().map(str::to_string),
        )
    };
    const CACHING_DISABLED: &str = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad";
    for (path, _) in every_operation().await {
        if path == "/" {
            continue; // the UI takes the root; the playground stays at the API's own URL
        }
        let concrete = concrete(&path);
        for spelling in [concrete.clone(), format!("{concrete}/")] {
            assert_eq!(origin_of(&spelling), ("api".to_string(), Some(CACHING_DISABLED.to_string())), "{spelling}");
        }
    }
    for ui_route in ["/", "/index.html", "/assets/index-3f2a1b.js", "/thread/abc", "/assistant/abc", "/new"] {
        assert_eq!(origin_of(ui_route).0, "ui", "{ui_route}");
    }
    assert!(
        behaviors.iter().all(|b| b["OriginRequestPolicyId"] == "b689b0a8-53d0-40ab-baf2-68738e2966ac"),
        "all but Host, cookies too"
    );
}
