//! The one table runner of the end-to-end tests. A case is a request posted
//! to a [`TestApp`] and everything it must come to: the status, the answer
//! where the provider reads it, and exactly the documents it adds to the
//! stream. The whole stream is checked after every case, so a case that
//! writes what it should not fails as surely as one that writes too little.
//! A case a provider would redeliver is sent twice: the second time it must
//! get the same answer and add nothing.

use std::path::PathBuf;

use aduan_adapter::testkit::{self, Answer, OwnedRequest, Scheme, Signing};
use serde_json::Value;

use super::{TestApp, spawn_app};

/// What a case adds to the stream.
enum Adds {
    /// These documents, `"*"` matching any value.
    Documents(Vec<Value>),
    /// Those of a golden file, read or (with `ADUAN_BLESS=1`) written by
    /// [`testkit::expected_documents`].
    Golden(PathBuf),
}

/// One request and what it must leave behind.
pub struct Case {
    label: String,
    /// The request, its URI the path and query from the server root.
    request: OwnedRequest,
    status: u16,
    answer: Option<Answer>,
    /// What the answer's content type must start with.
    answer_type: Option<String>,
    /// Whether the answer must carry a `Retry-After` of 1 to 120 seconds.
    retry_after: bool,
    adds: Adds,
    /// Whether the request is sent again, as providers redeliver.
    redelivered: bool,
}

/// What a case got.
pub struct Answered {
    /// The case's label.
    pub label: String,
    /// The status answered.
    pub status: u16,
    /// The answer's body.
    pub body: String,
    /// The documents the case added to the stream.
    pub added: Vec<Value>,
}

impl Case {
    /// A request that must be answered `200` and add nothing, until told otherwise.
    pub fn new(label: impl Into<String>, method: &str, path: impl AsRef<str>) -> Self {
        Case {
            label: label.into(),
            request: OwnedRequest::new(method, path.as_ref()),
            status: 200,
            answer: None,
            answer_type: None,
            retry_after: false,
            adds: Adds::Documents(Vec::new()),
            redelivered: false,
        }
    }

    /// A `GET`.
    pub fn get(label: impl Into<String>, path: impl AsRef<str>) -> Self {
        Case::new(label, "GET", path)
    }

    /// A `POST`.
    pub fn post(label: impl Into<String>, path: impl AsRef<str>) -> Self {
        Case::new(label, "POST", path)
    }

    /// Builds on the request with the kit's [`OwnedRequest`] methods.
    fn with_request(mut self, build: impl FnOnce(OwnedRequest) -> OwnedRequest) -> Self {
        self.request = build(self.request);
        self
    }

    /// Adds a request header.
    pub fn header(self, name: &str, value: impl Into<String>) -> Self {
        let value = value.into();
        self.with_request(|r| r.header(name, &value))
    }

    /// Adds a request header where there is a value (a token a case may
    /// leave out).
    pub fn header_opt(self, name: &str, value: Option<&str>) -> Self {
        self.with_request(|r| r.header_opt(name, value))
    }

    /// Sets the body.
    pub fn body(self, body: impl Into<Vec<u8>>) -> Self {
        self.with_request(|r| r.body(body))
    }

    /// A JSON body with its content type.
    pub fn json(self, body: impl Into<Vec<u8>>) -> Self {
        self.with_request(|r| r.json(body))
    }

    /// A form body with its content type.
    pub fn form(self, body: impl Into<Vec<u8>>) -> Self {
        self.with_request(|r| r.form(body))
    }

    /// Signs the body in `scheme` with `secret`, as `signing` says.
    pub fn signed(self, scheme: Scheme, secret: &str, signing: Signing) -> Self {
        self.with_request(|r| r.signed(scheme, secret, signing))
    }

    /// The status the request must get.
    pub fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// The answer body the request must get.
    pub fn answer(mut self, answer: Answer) -> Self {
        self.answer = Some(answer);
        self
    }

    /// What the answer's content type must start with.
    pub fn answer_type(mut self, prefix: &str) -> Self {
        self.answer_type = Some(prefix.to_string());
        self
    }

    /// The answer must ask the provider to retry later.
    pub fn retry_after(mut self) -> Self {
        self.retry_after = true;
        self
    }

    /// The documents the request adds, in order.
    pub fn adds(mut self, documents: Vec<Value>) -> Self {
        self.adds = Adds::Documents(documents);
        self
    }

    /// `n` documents, whatever they hold, for tests about counts rather
    /// than content.
    pub fn adds_any(self, n: usize) -> Self {
        self.adds(vec![Value::from("*"); n])
    }

    /// The documents of the golden file at `path`, which must hold some.
    pub fn adds_golden(mut self, path: PathBuf) -> Self {
        self.adds = Adds::Golden(path);
        self
    }

    /// Puts `prefix` before the label, for steps of a larger case.
    pub fn prefixed(mut self, prefix: &str) -> Self {
        self.label = format!("{prefix}: {}", self.label);
        self
    }

    /// The request as it is sent, for tests that need the answer itself
    /// (timing, concurrency, exact headers) rather than a table's checks.
    pub fn request(&self, app: &TestApp) -> reqwest::RequestBuilder {
        let request = &self.request;
        let mut builder = app
            .client
            .request(request.method.clone(), app.url(&request.uri.to_string()))
            .headers(request.headers.clone());
        if !request.body.is_empty() {
            builder = builder.body(request.body.clone());
        }
        builder
    }

    /// Sends the request a second time, as the provider redelivers: the
    /// same status and answer, nothing added.
    pub fn redelivered(mut self) -> Self {
        self.redelivered = true;
        self
    }
}

/// What one request got back.
struct Reply {
    status: u16,
    content_type: String,
    retry_after: Option<String>,
    body: String,
}

async fn send(app: &TestApp, case: &Case) -> Reply {
    let resp = case
        .request(app)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}: request failed: {e}", case.label));
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let content_type = header("content-type").unwrap_or_default();
    let retry_after = header("retry-after");
    Reply {
        status: resp.status().as_u16(),
        content_type,
        retry_after,
        body: resp.text().await.unwrap_or_default(),
    }
}

/// Runs the cases in order against `app`. The stream must hold, after each
/// case, what it held before the table and every case's documents so far;
/// returns what each case got, for checks of a table's own.
pub async fn run(app: &TestApp, cases: impl IntoIterator<Item = Case>) -> Vec<Answered> {
    let mut expected = app.complaints().await;
    let mut answered = Vec::new();
    for case in cases {
        let label = case.label.as_str();
        let reply = send(app, &case).await;
        assert_eq!(
            reply.status, case.status,
            "{label}: status (answer {})",
            reply.body
        );
        if let Some(prefix) = &case.answer_type {
            assert!(
                reply.content_type.starts_with(prefix.as_str()),
                "{label}: answer type {}",
                reply.content_type
            );
        }
        if let Some(answer) = &case.answer {
            answer.check(label, reply.body.as_bytes());
        }
        if case.retry_after {
            let secs: u64 = reply
                .retry_after
                .as_deref()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{label}: Retry-After {:?}", reply.retry_after));
            assert!((1..=120).contains(&secs), "{label}: Retry-After {secs}");
        }

        let actual = app.complaints().await;
        let added = actual.get(expected.len()..).unwrap_or_default().to_vec();
        match &case.adds {
            Adds::Documents(docs) => expected.extend(docs.iter().cloned()),
            Adds::Golden(path) => {
                match testkit::expected_documents(path, &Value::from(added.clone()), &[]) {
                    Value::Array(docs) if !docs.is_empty() => expected.extend(docs),
                    other => panic!("{label}: {} holds no documents: {other}", path.display()),
                }
            }
        }
        assert_eq!(
            actual.len(),
            expected.len(),
            "{label}: stream length\n{actual:#?}"
        );
        for (i, (a, e)) in actual.iter().zip(&expected).enumerate() {
            if let Some(at) = testkit::difference(a, e) {
                panic!("{label}: entry {i} differs at {at}\nactual:   {a:#}\nexpected: {e:#}");
            }
        }

        if case.redelivered {
            let again = send(app, &case).await;
            assert_eq!(
                (again.status, again.body.as_str()),
                (reply.status, reply.body.as_str()),
                "{label}: a redelivery gets the same answer"
            );
            assert_eq!(
                app.stream_len().await,
                expected.len(),
                "{label}: a redelivery adds nothing"
            );
        }
        answered.push(Answered {
            label: case.label,
            status: reply.status,
            body: reply.body,
            added,
        });
    }
    answered
}

/// Runs each case on a gateway of its own, started with `config_toml`, so
/// that no case sees another's documents or duplicates.
pub async fn run_each(config_toml: &str, cases: impl IntoIterator<Item = Case>) -> Vec<Answered> {
    let mut answered = Vec::new();
    for case in cases {
        let mut app = spawn_app(config_toml).await;
        answered.extend(run(&app, [case]).await);
        app.stop().await;
    }
    answered
}
