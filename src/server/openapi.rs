//! The OpenAPI 3.1 documents of the listeners, made from the same registration as the routes.
//!
//! Every JSON/form endpoint is an `async fn` with a `#[utoipa::path(...)]` attribute, and the
//! listeners register it only through [`Api::routes`] with [`utoipa_axum::routes!`]: the macro
//! builds the axum route from the attribute's method and path, so a route cannot be registered
//! without its operation, nor an operation documented without its route. [`Api`] records what
//! it registered so the check (`tests` below, `tests/it/openapi.rs`) can compare it with the
//! document it serves.
//!
//! ```text
//! public listener     GET /.well-known/openapi.json
//! internal listener   GET /internal/openapi.json
//! hub serve           GET /.well-known/openapi.json
//! ```
//!
//! Deliberately not in the documents, and named in [`Api::html_only`] / the info text:
//! - the admin console under `/ui` (HTML pages and forms for a browser, CSRF-protected; not an
//!   API a program should call);
//! - the proxied FHIR space of the public listener: it is the axum fallback, and what it allows
//!   is not a set of routes but the loaded policies (reloaded on SIGHUP), so one
//!   catch-all path item would say nothing true; `info.description` says so instead.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use axum::{Extension, Router};
use utoipa::openapi::path::{HttpMethod, PathItem};
use utoipa::openapi::{InfoBuilder, OpenApi, OpenApiBuilder};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};

/// Where the public listener and `hub serve` serve their document.
pub const WELL_KNOWN_PATH: &str = "/.well-known/openapi.json";
/// Where the internal listener serves its document.
pub const INTERNAL_PATH: &str = "/internal/openapi.json";

/// One (method, path) pair, e.g. `("GET", "/health")`.
pub type Operation = (String, String);

/// A listener's routes and their document, registered together.
pub struct Api<S> {
    router: OpenApiRouter<S>,
    /// What was handed to axum through [`Api::routes`], as (method, path).
    registered: BTreeSet<Operation>,
    /// Path prefixes of routes registered without a document, with the reason.
    html_only: Vec<(&'static str, &'static str)>,
    /// Plain routers of such routes, merged after the document is made.
    plain: Vec<Router<S>>,
}

/// The served document's JSON text.
#[derive(Clone)]
pub struct Document(Arc<String>);

/// A listener's router with what it was built from.
pub struct Finished<S> {
    /// The routes, the document's among them.
    pub router: Router<S>,
    /// The document as served.
    pub json: String,
    /// Every (method, path) handed to axum with an operation.
    pub registered: BTreeSet<Operation>,
    /// Path prefixes registered without a document, and why.
    pub html_only: Vec<(&'static str, &'static str)>,
}

impl<S: Clone + Send + Sync + 'static> Api<S> {
    /// An empty registration with the document's title and description.
    #[must_use]
    pub fn new(title: &str, description: &str) -> Self {
        let info = InfoBuilder::new()
            .title(title)
            .version(env!("CARGO_PKG_VERSION"))
            .description(Some(description))
            .build();
        Api {
            router: OpenApiRouter::with_openapi(OpenApiBuilder::new().info(info).build()),
            registered: BTreeSet::new(),
            html_only: Vec::new(),
            plain: Vec::new(),
        }
    }

    /// Registers routes made by [`utoipa_axum::routes!`] (or [`route`]): their operations
    /// go into the document, their handlers into the router.
    #[must_use]
    pub fn routes(mut self, routes: UtoipaMethodRouter<S>) -> Self {
        for (path, item) in &routes.1.paths {
            for method in methods(item) {
                self.registered.insert((method.to_owned(), path.clone()));
            }
        }
        self.router = self.router.routes(routes);
        self
    }

    /// Adds another registration's routes and operations.
    #[must_use]
    pub fn include(mut self, other: Api<S>) -> Self {
        self.registered.extend(other.registered);
        self.html_only.extend(other.html_only);
        self.plain.extend(other.plain);
        self.router = self.router.merge(other.router);
        self
    }

    /// Routes under `prefix` that are deliberately not documented (HTML pages for a browser),
    /// with the reason; `router` must only hold paths under `prefix` (the source scan in
    /// `tests` checks every path string in the console's registration).
    #[must_use]
    pub fn html_only(mut self, prefix: &'static str, why: &'static str, router: Router<S>) -> Self {
        self.html_only.push((prefix, why));
        self.plain.push(router);
        self
    }

    /// The router and the document it serves; `doc_route` is the `routes!` of the handler
    /// that serves it ([`well_known`] or [`internal`]), registered like any other.
    pub fn finish(self, doc_route: UtoipaMethodRouter<S>) -> Finished<S> {
        let Api {
            router,
            registered,
            html_only,
            plain,
        } = self.routes(doc_route);
        let (mut router, doc) = router.split_for_parts();
        for p in plain {
            // The HTML-only routes: merged here, after the document is made (see `html_only`).
            router = router.merge(p);
        }
        let json = doc.to_pretty_json().unwrap_or_default();
        Finished {
            router: router.layer(Extension(Document(Arc::new(json.clone())))),
            json,
            registered,
            html_only,
        }
    }
}

/// A route made by hand, for a path known only at run time (the `did:web` document): the
/// operation and the handler get the same method and path here, as `routes!` does.
pub fn route<S: Clone + Send + Sync + 'static>(
    method: HttpMethod,
    path: &str,
    operation: utoipa::openapi::path::Operation,
    handler: MethodRouter<S>,
) -> UtoipaMethodRouter<S> {
    let mut paths = utoipa::openapi::path::Paths::new();
    paths.add_path_operation(path, vec![method], operation);
    (Vec::new(), paths, handler)
}

/// The methods a path item has operations for.
#[must_use]
pub fn methods(item: &PathItem) -> Vec<&'static str> {
    [
        ("GET", item.get.is_some()),
        ("PUT", item.put.is_some()),
        ("POST", item.post.is_some()),
        ("DELETE", item.delete.is_some()),
        ("OPTIONS", item.options.is_some()),
        ("HEAD", item.head.is_some()),
        ("PATCH", item.patch.is_some()),
        ("TRACE", item.trace.is_some()),
    ]
    .into_iter()
    .filter_map(|(m, on)| on.then_some(m))
    .collect()
}

/// The (method, path) pairs of a document.
#[must_use]
pub fn operations(doc: &OpenApi) -> BTreeSet<Operation> {
    doc.paths
        .paths
        .iter()
        .flat_map(|(path, item)| {
            methods(item)
                .into_iter()
                .map(move |m| (m.to_owned(), path.clone()))
        })
        .collect()
}

/// Answers with the listener's document (the JSON text made once in [`Api::finish`]).
pub async fn serve(Extension(doc): Extension<Document>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        doc.0.as_str().to_owned(),
    )
        .into_response()
}

/// `GET /.well-known/openapi.json` (public listener, `hub serve`).
#[utoipa::path(get, path = WELL_KNOWN_PATH, tag = "meta", operation_id = "openapi_document",
    summary = "This listener's OpenAPI document",
    responses((status = 200, description = "This listener's OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn well_known(doc: Extension<Document>) -> Response {
    serve(doc).await
}

/// `GET /internal/openapi.json` (internal listener).
#[utoipa::path(get, path = INTERNAL_PATH, tag = "meta", operation_id = "openapi_document",
    summary = "This listener's OpenAPI document",
    responses((status = 200, description = "This listener's OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn internal(doc: Extension<Document>) -> Response {
    serve(doc).await
}

#[cfg(test)]
mod tests {
    //! The check: every listener's document names exactly the routes it registers (a), and no
    //! route is registered anywhere but through [`Api`] (c). `tests/it/openapi.rs` (b) asks
    //! the running binary.

    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    use serde_json::Value;

    use super::{Finished, Operation, INTERNAL_PATH, WELL_KNOWN_PATH};
    use crate::app::AppState;
    use crate::server::{admin_api, hub_api, public};

    /// Path prefixes that may be routed without a document, and why.
    const UNDOCUMENTED: &[(&str, &str)] = &[(
        "/ui",
        "the admin console: HTML pages and forms for a browser, not an API (admin_api::CONSOLE_EXCLUDED)",
    )];

    fn public(did_web: bool, medmij: Option<bool>) -> Finished<Arc<AppState>> {
        public::api(&public::Shape {
            did_web: did_web.then(|| ("/custodian/did.json".to_owned(), "{}".to_owned())),
            medmij,
        })
        .finish(utoipa_axum::routes!(super::well_known))
    }

    fn internal(zorgdomein: bool, console: bool) -> Finished<Arc<AppState>> {
        admin_api::api(&admin_api::Shape {
            zorgdomein,
            console,
        })
        .finish(utoipa_axum::routes!(super::internal))
    }

    fn hub() -> Finished<hub_api::HubApi> {
        hub_api::api().finish(utoipa_axum::routes!(super::well_known))
    }

    /// The (method, path) pairs of a served document, read back from its JSON.
    fn documented(json: &str) -> (Value, BTreeSet<Operation>) {
        let doc: Value = serde_json::from_str(json).expect("the document is JSON");
        let mut ops = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("path item").keys() {
                if [
                    "get", "put", "post", "delete", "options", "head", "patch", "trace",
                ]
                .contains(&method.as_str())
                {
                    ops.insert((method.to_uppercase(), path.clone()));
                }
            }
        }
        (doc, ops)
    }

    /// The check (a) for one listener: the served document's operations are the registered
    /// routes, undocumented routes are only under allow-listed prefixes, and every `{name}` in
    /// a path is a declared path parameter of its operations.
    fn check<S>(listener: &str, f: &Finished<S>, doc_path: &str) -> BTreeSet<Operation> {
        let (doc, ops) = documented(&f.json);
        assert!(
            doc["openapi"]
                .as_str()
                .is_some_and(|v| v.starts_with("3.1")),
            "{listener}: OpenAPI 3.1, got {}",
            doc["openapi"]
        );
        let registered = &f.registered;
        let missing: Vec<_> = registered.difference(&ops).collect();
        let extra: Vec<_> = ops.difference(registered).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{listener}: routes without a document: {missing:?}; documents without a route: {extra:?}"
        );
        assert!(
            ops.contains(&("GET".to_owned(), doc_path.to_owned())),
            "{listener}: serves itself"
        );
        for (prefix, _) in &f.html_only {
            assert!(
                UNDOCUMENTED.iter().any(|(p, _)| p == prefix),
                "{listener}: routes under {prefix} have no document and are not allow-listed"
            );
            assert!(
                !ops.iter().any(|(_, p)| p.starts_with(prefix)),
                "{listener}: {prefix} is both documented and excluded"
            );
        }
        let mut ids = BTreeSet::new();
        for (method, path) in &ops {
            let op = &doc["paths"][path][method.to_lowercase()];
            let id = op["operationId"].as_str().unwrap_or_default();
            assert!(
                !id.is_empty() && ids.insert(id.to_owned()),
                "{listener}: {method} {path}: operationId {id:?} is missing or not unique"
            );
            let declared: BTreeSet<&str> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "path" && p["required"] == true)
                .filter_map(|p| p["name"].as_str())
                .collect();
            let in_path: BTreeSet<&str> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                .collect();
            assert_eq!(
                declared, in_path,
                "{listener}: {method} {path} path parameters"
            );
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{listener}: {method} {path} has no responses"
            );
        }
        ops
    }

    fn op(method: &str, path: &str) -> Operation {
        (method.to_owned(), path.to_owned())
    }

    #[test]
    fn every_listener_documents_exactly_the_routes_it_registers() {
        let ops = check("public", &public(true, Some(true)), WELL_KNOWN_PATH);
        for o in [
            op("POST", crate::oauth::TOKEN_PATH),
            op("GET", "/.well-known/oauth-authorization-server"),
            op("GET", "/custodian/did.json"),
            op("GET", "/medmij/authorize"),
            op("POST", "/medmij/login/dev"),
            op("POST", "/medmij/token"),
        ] {
            assert!(ops.contains(&o), "public: {o:?} in {ops:?}");
        }
        let ops = check("internal", &internal(true, true), INTERNAL_PATH);
        for o in [
            op("POST", "/internal/credentials"),
            op("GET", "/internal/credentials"),
            op("GET", "/internal/credentials/{id}"),
            op("HEAD", "/internal/auth/v1/accesstoken/verify"),
            op("GET", "/internal/zorgdomein/sso-token"),
            op("GET", "/metrics"),
        ] {
            assert!(ops.contains(&o), "internal: {o:?} in {ops:?}");
        }
        let ops = check("hub", &hub(), WELL_KNOWN_PATH);
        assert!(ops.contains(&op(
            "GET",
            "/v3/resources/{key}/add-share/{account}/{permission}"
        )));
    }

    /// The optional routes and their operations come and go together with the configuration.
    #[test]
    fn the_documents_follow_the_configuration() {
        let ops = check("public, plain", &public(false, None), WELL_KNOWN_PATH);
        assert!(!ops
            .iter()
            .any(|(_, p)| p.starts_with("/medmij") || p.ends_with("did.json")));
        let ops = check(
            "public, medmij",
            &public(false, Some(false)),
            WELL_KNOWN_PATH,
        );
        assert!(ops.contains(&op("GET", "/medmij/confirm")));
        assert!(
            !ops.contains(&op("POST", "/medmij/login/dev")),
            "no dev login"
        );
        let plain = internal(false, false);
        let ops = check("internal, plain", &plain, INTERNAL_PATH);
        assert!(!ops.iter().any(|(_, p)| p.contains("zorgdomein")));
        assert!(plain.html_only.is_empty());
        assert_eq!(internal(false, true).html_only.len(), 1);
    }

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read src") {
            let p = entry.expect("entry").path();
            if p.is_dir() {
                rust_files(&p, out);
            } else if p.extension().is_some_and(|e| e == "rs") {
                out.push(p);
            }
        }
    }

    /// The calls that register a route on an axum router without a document.
    const ROUTING: &[&str] = &[
        ".route(",
        ".route_service(",
        ".nest(",
        ".nest_service(",
        ".merge(",
    ];

    /// Files that may call them, and why.
    const ALLOWED_FILES: &[(&str, &str)] = &[
        (
            "src/server/openapi.rs",
            "the registrar: merges documented routers and the html-only ones",
        ),
        (
            "src/server/console/mod.rs",
            "the admin console, HTML only, every path under /ui (checked below)",
        ),
        (
            "src/demo/sample_fhir.rs",
            "the demo's sample FHIR source system, not a poortwachter listener",
        ),
        (
            "src/cli/demo_medmij.rs",
            "the MedMij demo's stand-in PGO and provider, not a poortwachter listener",
        ),
    ];

    /// Single lines elsewhere that match but register nothing on a listener.
    const ALLOWED_LINES: &[(&str, &str)] = &[
        ("src/authn/mod.rs", "m.route(p)"),
        (
            "src/authn/mod.rs",
            "assert!(only.route(\"/Patient/1\").is_none());",
        ),
        (
            "src/proxy/mod.rs",
            "let mount = proxy.mounts.route(parts.uri.path());",
        ),
        // A unit test's list server.
        (
            "src/medmij/sources.rs",
            "let app = axum::Router::new().route(",
        ),
    ];

    /// The check (c): a route can only be added through [`super::Api`] (so with a document),
    /// except in the allow-listed places.
    #[test]
    fn routes_are_registered_only_with_a_document() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        rust_files(&root.join("src"), &mut files);
        let mut offending = Vec::new();
        for file in &files {
            let rel = file
                .strip_prefix(root)
                .expect("under the crate")
                .to_string_lossy()
                .replace('\\', "/");
            if ALLOWED_FILES.iter().any(|(f, _)| *f == rel) {
                continue;
            }
            let text = std::fs::read_to_string(file).expect("read");
            for (n, line) in text.lines().enumerate() {
                let t = line.trim();
                if t.starts_with("//") || !ROUTING.iter().any(|r| t.contains(r)) {
                    continue;
                }
                if !ALLOWED_LINES.iter().any(|(f, l)| *f == rel && *l == t) {
                    offending.push(format!("{rel}:{}: {t}", n + 1));
                }
            }
        }
        assert!(
            offending.is_empty(),
            "routes registered without a document (use Api::routes with utoipa_axum::routes!, \
             or allow-list with a reason): {offending:#?}"
        );
        // Every allow-listed place still exists (a stale entry would hide nothing, but lies).
        for (f, l) in ALLOWED_LINES {
            let text = std::fs::read_to_string(root.join(f)).expect("allow-listed file");
            assert!(
                text.lines().any(|x| x.trim() == *l),
                "stale allow-list entry {f}: {l}"
            );
        }
        // The console registers only paths under /ui.
        let console =
            std::fs::read_to_string(root.join("src/server/console/mod.rs")).expect("console");
        let mut paths = 0;
        for (i, _) in console.match_indices(".route(") {
            let rest = console[i + ".route(".len()..].trim_start();
            let path = rest
                .strip_prefix('"')
                .and_then(|r| r.split('"').next())
                .unwrap_or_else(|| {
                    panic!("console: a route whose path is not a literal: {rest:.40}")
                });
            assert!(
                path == "/ui" || path.starts_with("/ui/"),
                "console route {path} outside /ui"
            );
            paths += 1;
        }
        assert!(paths > 10, "the console's routes were found ({paths})");
    }
}
