//! The generator of `bench/route/trace.jsonl`: labelled coding tasks with synthetic outcomes.
//!
//! Everything is derived from one seed through `SplitMix64`, with integer and plain float arithmetic only
//! (no `exp`/`ln`), so the output is byte-identical on every platform. The success model and prices are
//! documented in `bench/route/README.md`; change them there and here together.

use serde_json::{Value, json};
use tandem_router::eval::SplitMix64;

/// The generator's seed.
pub const SEED: u64 = 20_260_301;

/// Tasks per class, in generation order.
const COUNTS: [(&str, usize); 8] = [
    ("rename", 30),
    ("docs", 22),
    ("config", 22),
    ("test", 28),
    ("fix", 40),
    ("refactor", 30),
    ("migration", 20),
    ("other", 28),
];

/// Base difficulty per class (0 = trivial, 1 = very hard).
fn class_base(class: &str) -> f64 {
    match class {
        "rename" => 0.08,
        "docs" => 0.12,
        "config" => 0.22,
        "test" => 0.30,
        "fix" => 0.40,
        "refactor" => 0.55,
        "migration" => 0.65,
        _ => 0.58,
    }
}

/// Base output tokens per class.
fn class_output(class: &str) -> f64 {
    match class {
        "rename" => 150.0,
        "docs" => 400.0,
        "config" => 250.0,
        "test" => 900.0,
        "fix" => 700.0,
        "refactor" => 1800.0,
        "migration" => 2500.0,
        _ => 1200.0,
    }
}

/// A prompt template: text with slots, and a hidden difficulty adjustment the router cannot see.
struct Template {
    text: &'static str,
    hidden: f64,
}

const fn t(text: &'static str, hidden: f64) -> Template {
    Template { text, hidden }
}

fn templates(class: &str) -> &'static [Template] {
    match class {
        "rename" => {
            const T: &[Template] = &[
                t("rename `{id}` to `{id2}` in {f1}", 0.0),
                t(
                    "fix the typo in the doc comment of `{id}` (\"recieve\" -> \"receive\")",
                    0.0,
                ),
                t(
                    "rename the `timeout` parameter of `{id}` to `timeout_ms` in {f1}",
                    0.0,
                ),
                t("{bump}", 0.0),
                t("run the formatter on {f1} and fix the formatting", -0.02),
                t("rename `{id}` to `{id2}` everywhere it is used", 0.20),
                t("sort the imports in {f1}", -0.03),
                t("capitalize the user-facing error messages in {f1}", 0.02),
                t("quick rename: `{id}` -> `{id2}`", 0.0),
                t(
                    "rename {f1} to {f1new} and update every import across the project",
                    0.25,
                ),
            ];
            T
        }
        "docs" => {
            const T: &[Template] = &[
                t("update the README to mention the new `--dry-run` flag", 0.0),
                t(
                    "add a doc comment to `{id}` explaining the retry semantics",
                    0.02,
                ),
                t("document the public functions in {f1}", 0.05),
                t("fix the broken link in docs/getting-started.md", -0.05),
                t("add a CHANGELOG entry for the `{id}` fix", -0.04),
                t("write a docstring for `{id}` in {f1}", 0.0),
                t(
                    "explain in the README how cache invalidation works end to end, with a sequence diagram",
                    0.22,
                ),
                t("add comments to the tricky parts of {f1}", 0.06),
            ];
            T
        }
        "config" => {
            const T: &[Template] = &[
                t(
                    "update the CI workflow in .github/workflows/ci.yml to cache dependencies between runs",
                    0.05,
                ),
                t("add `LOG_LEVEL=info` to the Dockerfile", -0.05),
                t(
                    "set the max connections to 64 in config/production.toml",
                    -0.06,
                ),
                t("enable the `strict` option in tsconfig.json", 0.15),
                t(
                    "add a pre-commit config that runs the linter and the formatter",
                    0.0,
                ),
                t("make CI fail on lint warnings", 0.02),
                t(
                    "add a feature flag `new_checkout` to config/flags.yaml, default off",
                    0.0,
                ),
                t(
                    "the CI yaml runs the test job twice, remove the duplicate",
                    -0.02,
                ),
            ];
            T
        }
        "test" => {
            const T: &[Template] = &[
                t("add unit tests for `{id}` in {f1}", 0.0),
                t(
                    "write a test that covers the empty-input case of `{id}`",
                    -0.05,
                ),
                t("add a regression test for the off-by-one in `{id}`", 0.0),
                t(
                    "increase test coverage of {f1}: the error paths are untested",
                    0.08,
                ),
                t("add property tests that check `{id}` round-trips", 0.12),
                t("convert the tests in {tf} to table-driven tests", 0.05),
                t(
                    "add an integration test that starts the server and checks /health returns 200",
                    0.15,
                ),
            ];
            T
        }
        "fix" => {
            const T: &[Template] = &[
                t("fix the failing test in {tf}", 0.0),
                t(
                    "the build fails with a type error in {f1}, please fix",
                    -0.02,
                ),
                t("`{id}` returns None for valid input, fix it", 0.05),
                t("fix the bug where `{id}` panics on an empty string", -0.05),
                t(
                    "users report 500s from /orders when the cart is empty; fix the handler in {f1}",
                    0.05,
                ),
                t(
                    "quick fix: the cache sometimes returns stale entries after invalidate() in {f1}",
                    0.30,
                ),
                t("fix the flaky test `{id}_times_out` in {tf}", 0.20),
                t("the build is broken after the last merge, fix it", 0.05),
                t(
                    "fix the off-by-one error in the pagination code in {f1}",
                    -0.05,
                ),
                t(
                    "TypeError: Cannot read properties of undefined (reading 'id') in {f1}, fix",
                    0.0,
                ),
                t(
                    "fix the deadlock between the writer thread and flush() in {f1}",
                    0.30,
                ),
            ];
            T
        }
        "refactor" => {
            const T: &[Template] = &[
                t(
                    "refactor {f1}: split the 800-line `handle` function into smaller functions",
                    0.0,
                ),
                t(
                    "extract the retry loop in {f1} into a reusable helper",
                    -0.15,
                ),
                t(
                    "refactor `{id}` and its callers in {f1}, {f2} and {f3} to take a config struct instead of six parameters",
                    0.05,
                ),
                t(
                    "simplify the error handling in {f1}: use `?` instead of the nested matches",
                    -0.15,
                ),
                t(
                    "restructure the storage module into separate files for types, parsing and IO",
                    0.05,
                ),
                t("deduplicate the validation logic in {f1} and {f2}", -0.05),
                t(
                    "replace the stringly-typed status field with an enum in {f1}, {f2}, {f3} and {f4}",
                    0.05,
                ),
                t("decouple the HTTP layer from the storage layer", 0.15),
            ];
            T
        }
        "migration" => {
            const T: &[Template] = &[
                t("{framework}", 0.05),
                t(
                    "upgrade {dep} to the next major version and fix the breaking changes",
                    0.05,
                ),
                t("port {f1} from callbacks to async/await", -0.05),
                t(
                    "migrate the config from YAML to TOML, keeping the old format working for one release",
                    0.0,
                ),
                t(
                    "move from the deprecated `{id}` API to the new builder in {f1}, {f2} and {f3}",
                    0.0,
                ),
                t(
                    "migrate the database schema: add a NOT NULL `tenant_id` column to orders with a backfill",
                    0.10,
                ),
            ];
            T
        }
        _ => {
            const T: &[Template] = &[
                t(
                    "why does the stream stall after the first chunk when the upstream is slow?",
                    0.05,
                ),
                t(
                    "design a plugin architecture for providers so third parties can add one without forking",
                    0.10,
                ),
                t(
                    "investigate why p99 latency doubled since last week's deploy",
                    0.10,
                ),
                t(
                    "plan the split of the monolith into an API service and a background worker",
                    0.10,
                ),
                t(
                    "what's the trade-off between keeping sessions in Redis and in Postgres here?",
                    -0.10,
                ),
                t(
                    "figure out the root cause of the memory leak in the worker process",
                    0.15,
                ),
                t("explain what `{id}` does", -0.40),
                t("how does a request flow from {f1} to {f2}?", -0.25),
                t("review {f1} for security issues", 0.0),
            ];
            T
        }
    }
}

/// One repository flavour: file names, identifiers, commands and failure output in one language.
struct Flavor {
    files: &'static [&'static str],
    test_files: &'static [&'static str],
    idents: &'static [&'static str],
    bump: &'static [&'static str],
    framework: &'static [&'static str],
    deps: &'static [&'static str],
    test_cmd: &'static str,
}

const RUST: Flavor = Flavor {
    files: &[
        "src/lib.rs",
        "src/config.rs",
        "src/store/session.rs",
        "src/http/handler.rs",
        "crates/core/src/pipeline.rs",
        "src/cache.rs",
        "src/parser/mod.rs",
        "src/cli/args.rs",
        "src/auth/token.rs",
        "src/retry.rs",
    ],
    test_files: &[
        "tests/it/parse.rs",
        "tests/it/session.rs",
        "src/cache/tests.rs",
    ],
    idents: &[
        "parse_duration",
        "SessionStore",
        "retry_backoff",
        "fetch_user",
        "TokenBucket",
        "load_config",
        "split_frames",
        "flush_pending",
    ],
    bump: &[
        "bump serde to 1.0.210 in Cargo.toml",
        "bump the crate version to 0.4.1",
    ],
    framework: &[
        "migrate the server from axum 0.7 to axum 0.8",
        "migrate from structopt to clap 4 derive",
    ],
    deps: &["tokio", "hyper", "rusqlite"],
    test_cmd: "cargo test",
};

const PYTHON: Flavor = Flavor {
    files: &[
        "app/models.py",
        "app/views/orders.py",
        "app/services/billing.py",
        "scripts/export.py",
        "app/cache.py",
        "app/auth/tokens.py",
        "app/api/serializers.py",
        "app/settings.py",
    ],
    test_files: &[
        "tests/test_orders.py",
        "tests/test_billing.py",
        "tests/test_cache.py",
    ],
    idents: &[
        "OrderSerializer",
        "compute_invoice",
        "refresh_token",
        "export_csv",
        "get_cart",
        "parse_iso_date",
        "CacheEntry",
    ],
    bump: &[
        "bump requests to 2.32.3 in requirements.txt",
        "bump the package version to 2.8.0 in pyproject.toml",
    ],
    framework: &[
        "migrate the API from Flask to FastAPI",
        "migrate the models from SQLAlchemy 1.4 to 2.0 style",
    ],
    deps: &["Django", "pydantic", "celery"],
    test_cmd: "pytest -q",
};

const TYPESCRIPT: Flavor = Flavor {
    files: &[
        "src/components/Sidebar.tsx",
        "src/api/client.ts",
        "src/hooks/useSession.ts",
        "src/utils/date.ts",
        "src/store/cart.ts",
        "src/pages/Checkout.tsx",
        "src/server/routes.ts",
        "src/lib/cache.ts",
    ],
    test_files: &[
        "tests/api.test.ts",
        "src/utils/date.test.ts",
        "tests/cart.test.ts",
    ],
    idents: &[
        "useSession",
        "formatDate",
        "fetchOrders",
        "CartStore",
        "renderSidebar",
        "retryRequest",
        "parseQuery",
    ],
    bump: &[
        "bump vite to 5.4.2 in package.json",
        "bump the package version to 3.1.0",
    ],
    framework: &[
        "migrate the test suite from Jest to Vitest",
        "upgrade React from 17 to 18 and fix the StrictMode double-render issues",
    ],
    deps: &["React", "Next.js", "TypeScript"],
    test_cmd: "npm test",
};

const FLAVORS: [&Flavor; 3] = [&RUST, &PYTHON, &TYPESCRIPT];

const SYSTEM_PROMPT: &str = "You are a coding agent running in a terminal-based coding assistant. \
You and the user share the same workspace and collaborate to achieve the user's goals.\n\n\
# How you work\n\
- Read the relevant code before changing it. Prefer `rg` for searching and read files in chunks.\n\
- Keep changes minimal and focused on the task; do not fix unrelated bugs.\n\
- Edit files with the apply_patch tool. Never rewrite a whole file when a small patch will do.\n\
- After editing, run the narrowest test or build command that exercises the change.\n\
- If a command fails, read the error carefully before trying again.\n\n\
# Final answer\n\
Summarize what you changed and why in a few sentences, referencing files with their paths. \
Mention anything you could not verify.";

fn tools() -> Value {
    json!([
        {"type": "function", "function": {"name": "exec_command",
            "description": "Runs a shell command and returns its output.",
            "parameters": {"type": "object", "properties": {"cmd": {"type": "string"},
                "workdir": {"type": "string"}}, "required": ["cmd"]}}},
        {"type": "function", "function": {"name": "apply_patch",
            "description": "Applies a patch in the apply_patch format to the workspace.",
            "parameters": {"type": "object", "properties": {"input": {"type": "string"}},
                "required": ["input"]}}},
        {"type": "function", "function": {"name": "read_file",
            "description": "Reads a file, optionally a range of lines.",
            "parameters": {"type": "object", "properties": {"path": {"type": "string"},
                "start": {"type": "integer"}, "end": {"type": "integer"}}, "required": ["path"]}}}
    ])
}

struct Rng(SplitMix64);

impl Rng {
    fn f(&mut self) -> f64 {
        self.0.next_f64()
    }
    fn below(&mut self, n: usize) -> usize {
        (self.0.next_u64() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.f()
    }
}

/// How the conversation looks before the request.
#[derive(Clone, Copy, PartialEq)]
enum History {
    Fresh,
    Failing,
    Explored,
    Long,
    FollowUp,
    Interrupted,
}

fn pick_history(rng: &mut Rng, class: &str) -> History {
    let x = rng.f();
    let table: &[(f64, History)] = match class {
        "fix" => &[
            (0.50, History::Failing),
            (0.65, History::Explored),
            (0.68, History::Long),
            (0.73, History::Interrupted),
        ],
        "test" => &[
            (0.20, History::Explored),
            (0.25, History::Failing),
            (0.30, History::FollowUp),
        ],
        "refactor" | "migration" | "other" => &[
            (0.35, History::Explored),
            (0.42, History::Long),
            (0.47, History::FollowUp),
            (0.52, History::Interrupted),
        ],
        _ => &[
            (0.15, History::Explored),
            (0.22, History::FollowUp),
            (0.27, History::Interrupted),
        ],
    };
    table
        .iter()
        .find(|(p, _)| x < *p)
        .map_or(History::Fresh, |(_, h)| *h)
}

fn fill(rng: &mut Rng, flavor: &Flavor, text: &str) -> (String, Vec<String>) {
    let mut files: Vec<&str> = Vec::new();
    while files.len() < 4 {
        let f = *rng.pick(flavor.files);
        if !files.contains(&f) {
            files.push(f);
        }
    }
    let id = *rng.pick(flavor.idents);
    let mut id2 = *rng.pick(flavor.idents);
    if id2 == id {
        id2 = "handle_request";
    }
    let tf = *rng.pick(flavor.test_files);
    let renamed = files[0].replacen('.', "_v2.", 1);
    let bump = *rng.pick(flavor.bump);
    let framework = *rng.pick(flavor.framework);
    let dep = *rng.pick(flavor.deps);
    let out = text
        .replace("{f1new}", &renamed)
        .replace("{f1}", files[0])
        .replace("{f2}", files[1])
        .replace("{f3}", files[2])
        .replace("{f4}", files[3])
        .replace("{id2}", id2)
        .replace("{id}", id)
        .replace("{tf}", tf)
        .replace("{bump}", bump)
        .replace("{framework}", framework)
        .replace("{dep}", dep);
    let named: Vec<String> = files
        .iter()
        .map(|f| (*f).to_owned())
        .chain([tf.to_owned()])
        .filter(|f| out.contains(f.as_str()))
        .collect();
    (out, named)
}

/// Plausible source text: `lines` lines of a made-up module.
fn fake_source(rng: &mut Rng, flavor: &Flavor, lines: usize) -> String {
    let mut out = String::with_capacity(lines * 48);
    let rust = std::ptr::eq(flavor, &RUST);
    let python = std::ptr::eq(flavor, &PYTHON);
    let mut i = 0;
    while i < lines {
        let id = rng.pick(flavor.idents);
        let n = rng.below(1000);
        if rust {
            out.push_str(&format!(
                "pub fn {id}_{n}(input: &Input, limit: usize) -> Result<Output> {{\n    let mut acc = Vec::with_capacity(limit);\n    for item in input.items.iter().take(limit) {{\n        if item.weight > {n} {{\n            acc.push(item.clone());\n        }}\n    }}\n    Ok(Output::new(acc))\n}}\n\n"
            ));
        } else if python {
            out.push_str(&format!(
                "def {id}_{n}(items, limit=None):\n    \"\"\"Return the heavy items, at most `limit` of them.\"\"\"\n    result = []\n    for item in items[:limit]:\n        if item.weight > {n}:\n            result.append(item)\n    return result\n\n\n"
            ));
        } else {
            out.push_str(&format!(
                "export function {id}{n}(items: Item[], limit = 100): Item[] {{\n  const result: Item[] = [];\n  for (const item of items.slice(0, limit)) {{\n    if (item.weight > {n}) {{\n      result.push(item);\n    }}\n  }}\n  return result;\n}}\n\n"
            ));
        }
        i += 10;
    }
    out
}

fn failing_output(rng: &mut Rng, flavor: &Flavor, test_file: &str) -> String {
    let id = rng.pick(flavor.idents);
    if std::ptr::eq(flavor, &RUST) {
        if rng.f() < 0.5 {
            format!(
                "Exit code: 101\nWall time: 14.2 seconds\nOutput:\n   Compiling app v0.3.0 (/work/app)\n    Finished `test` profile [unoptimized + debuginfo] target(s) in 13.80s\n     Running {test_file}\n\nrunning 12 tests\ntest {id}_accepts_valid_input ... ok\ntest {id}_handles_empty_input ... FAILED\n\nfailures:\n\n---- {id}_handles_empty_input stdout ----\nthread '{id}_handles_empty_input' panicked at {test_file}:48:5:\nassertion `left == right` failed\n  left: Some(0)\n right: None\n\nfailures:\n    {id}_handles_empty_input\n\ntest result: FAILED. 11 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.03s\n\nerror: test failed, to rerun pass `--test it`\n"
            )
        } else {
            format!(
                "Exit code: 101\nWall time: 6.1 seconds\nOutput:\n   Compiling app v0.3.0 (/work/app)\nerror[E0502]: cannot borrow `self.entries` as mutable because it is also borrowed as immutable\n  --> src/cache.rs:88:9\n   |\n85 |         let first = self.entries.get(&key);\n   |                     ------------ immutable borrow occurs here\n...\n88 |         self.entries.insert(key, {id}(value));\n   |         ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ mutable borrow occurs here\n\nerror: could not compile `app` (lib) due to 1 previous error\n"
            )
        }
    } else if std::ptr::eq(flavor, &PYTHON) {
        format!(
            "Exit code: 1\nWall time: 3.4 seconds\nOutput:\n============================= test session starts ==============================\ncollected 31 items\n\n{test_file} ......F........                                        [100%]\n\n=================================== FAILURES ===================================\n____________________________ test_{id}_empty_cart ____________________________\n\nTraceback (most recent call last):\n  File \"/work/app/views/orders.py\", line 57, in {id}\n    total = sum(line['price'] for line in cart['items'])\nKeyError: 'items'\n=========================== short test summary info ============================\nFAILED {test_file}::test_{id}_empty_cart - KeyError: 'items'\n========================= 1 failed, 30 passed in 2.91s =========================\n"
        )
    } else {
        format!(
            "Exit code: 1\nWall time: 5.0 seconds\nOutput:\n FAIL  {test_file}\n  ● {id} › retries on 503\n\n    expect(received).toBe(expected) // Object.is equality\n\n    Expected: 3\n    Received: 1\n\n      41 |     await {id}(client);\n      42 |     expect(fetchMock).toHaveBeenCalledTimes(3);\n\nTest Suites: 1 failed, 7 passed, 8 total\nTests:       1 failed, 63 passed, 64 total\n"
        )
    }
}

fn call(id: &str, name: &str, args: Value) -> Value {
    json!({"role": "assistant", "content": null, "tool_calls": [
        {"id": id, "type": "function", "function": {"name": name, "arguments": args.to_string()}}]})
}

fn result(id: &str, content: &str) -> Value {
    json!({"role": "tool", "tool_call_id": id, "content": content})
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// Generate the whole trace as JSON lines.
pub fn generate() -> String {
    let mut rng = Rng(SplitMix64::new(SEED));
    let mut out = String::new();
    for (class, count) in COUNTS {
        for n in 0..count {
            let line = task(&mut rng, class, n);
            out.push_str(&line.to_string());
            out.push('\n');
        }
    }
    out
}

fn task(rng: &mut Rng, class: &str, n: usize) -> Value {
    let flavor = *rng.pick(&FLAVORS);
    let template = rng.pick(templates(class));
    let (prompt, named) = fill(rng, flavor, template.text);
    let history = pick_history(rng, class);
    let target = named
        .first()
        .cloned()
        .unwrap_or_else(|| flavor.files[0].to_owned());
    let test_file = flavor.test_files[0];

    let mut messages = vec![json!({"role": "system", "content": SYSTEM_PROMPT})];
    let mut hidden = template.hidden;
    match history {
        History::FollowUp => {
            messages.push(
                json!({"role": "user", "content": "can you show me where the config is loaded?"}),
            );
            messages.push(json!({"role": "assistant", "content": format!(
                "The configuration is loaded in `{}` at startup and passed down explicitly.", flavor.files[1])}));
        }
        History::Interrupted => {
            messages.push(json!({"role": "user", "content": prompt.clone()}));
            messages.push(call(
                "call_0",
                "exec_command",
                json!({"cmd": flavor.test_cmd}),
            ));
            messages.push(result("call_0", "aborted"));
            messages.push(json!({"role": "user", "content":
                "<turn_aborted><turn_id>t1</turn_id><reason>interrupted</reason></turn_aborted>"}));
            hidden += 0.05;
        }
        _ => {}
    }
    if history == History::Interrupted {
        messages.push(
            json!({"role": "user", "content": "Don't run anything yet, just make the change."}),
        );
    } else {
        messages.push(json!({"role": "user", "content": prompt}));
    }
    match history {
        History::Failing => {
            messages.push(call(
                "call_1",
                "exec_command",
                json!({"cmd": flavor.test_cmd}),
            ));
            messages.push(result("call_1", &failing_output(rng, flavor, test_file)));
            hidden += 0.10;
        }
        History::Explored => {
            let id = rng.pick(flavor.idents);
            messages.push(call(
                "call_1",
                "exec_command",
                json!({"cmd": format!("rg -n {id}")}),
            ));
            messages.push(result(
                "call_1",
                &format!(
                    "Exit code: 0\nOutput:\n{target}:42:    {id}(input)\n{}:17:use {id};\n",
                    flavor.files[2]
                ),
            ));
            messages.push(call("call_2", "read_file", json!({"path": target})));
            let lines = 80 + rng.below(200);
            messages.push(result("call_2", &fake_source(rng, flavor, lines)));
        }
        History::Long => {
            // About 52k–66k estimated tokens of file contents, over the default `big-context` limit.
            for (i, file) in flavor.files.iter().take(4).enumerate() {
                let id = format!("call_{}", i + 1);
                messages.push(call(&id, "read_file", json!({"path": file})));
                let lines = 2300 + rng.below(200);
                messages.push(result(&id, &fake_source(rng, flavor, lines)));
            }
            hidden += 0.15;
        }
        _ => {}
    }

    let mut session = serde_json::Map::new();
    if class == "fix" && rng.f() < 0.15 {
        let key = if rng.f() < 0.5 {
            "retries"
        } else {
            "prior_failures"
        };
        session.insert(key.to_owned(), json!(1));
        hidden += 0.10;
    }

    let effort = {
        let x = rng.f();
        let high = if matches!(class, "migration" | "other") {
            0.25
        } else {
            0.12
        };
        if x < high {
            Some("high")
        } else if x < 0.45 {
            Some("medium")
        } else if x < 0.6 {
            Some("low")
        } else {
            None
        }
    };

    let files = named.len() as f64;
    let difficulty =
        (class_base(class) + 0.07 * (files - 1.0).clamp(0.0, 4.0) + hidden + rng.range(-0.2, 0.2))
            .clamp(0.0, 1.0);
    let p_live = (0.97 - 1.05 * difficulty).clamp(0.03, 0.97);
    let p_deep = (0.95 - 0.45 * difficulty).clamp(0.05, 0.95);
    // Correlated draws: 60% of tasks share one uniform for both tiers.
    let u_live = rng.f();
    let u_deep = if rng.f() < 0.6 { u_live } else { rng.f() };

    let mut request =
        json!({"model": "auto", "messages": messages, "tools": tools(), "stream": true});
    if let Some(effort) = effort {
        request["reasoning_effort"] = json!(effort);
    }
    let body = request.to_string();
    let prompt_tokens = body.len() as f64 / 4.0;
    let output = class_output(class) * (1.0 + 0.3 * files) * rng.range(0.7, 1.3);
    let reasoning = output * (0.5 + difficulty) * 1.5;
    let live_cost = prompt_tokens * 0.25e-6 + output * 2.0e-6;
    let deep_cost = prompt_tokens * 1.25e-6 + (output + reasoning) * 10.0e-6;
    let live_latency = 250.0 + output + prompt_tokens / 20.0;
    let deep_latency = 1500.0 + (output + reasoning) * 12.5 + prompt_tokens / 5.0;

    let mut line = json!({
        "id": format!("{class}-{:03}", n + 1),
        "class": class,
        "request": request,
    });
    if !session.is_empty() {
        line["session"] = Value::Object(session);
    }
    line["outcomes"] = json!({
        "live": {"success": u_live < p_live, "cost_usd": round6(live_cost), "latency_ms": live_latency.round()},
        "deep": {"success": u_deep < p_deep, "cost_usd": round6(deep_cost), "latency_ms": deep_latency.round()},
    });
    line
}
