//! Tests of the scale benchmark's pure parts: URLs, the connection split, wrk's summary and its combination,
//! and the record accounting.

use crate::scale::{
    Load, Records, WrkRun, combine, database_url, parse_wrk, redact_url, split_connections,
    wrk_script,
};

#[test]
fn database_url_replaces_the_database_and_keeps_the_query() {
    let check = |url: &str, expected: &str| assert_eq!(database_url(url, "fresh"), expected);
    check(
        "postgres://tandem@127.0.0.1:5432/postgres",
        "postgres://tandem@127.0.0.1:5432/fresh",
    );
    check(
        "postgres://u:p%2F@db.example:5432/postgres?sslmode=disable",
        "postgres://u:p%2F@db.example:5432/fresh?sslmode=disable",
    );
    check(
        "postgres://tandem@127.0.0.1:5432",
        "postgres://tandem@127.0.0.1:5432/fresh",
    );
    check("postgresql://h/", "postgresql://h/fresh");
}

#[test]
fn redact_url_masks_only_a_password() {
    let check = |url: &str, expected: &str| assert_eq!(redact_url(url), expected);
    check(
        "postgres://tandem@127.0.0.1:5432/postgres",
        "postgres://tandem@127.0.0.1:5432/postgres",
    );
    check(
        "postgres://user:secret@db:5432/postgres",
        "postgres://user:***@db:5432/postgres",
    );
    check(
        "redis://:secret@127.0.0.1:6379/",
        "redis://:***@127.0.0.1:6379/",
    );
    check("redis://127.0.0.1:6379/", "redis://127.0.0.1:6379/");
    check("redis://127.0.0.1/?user=a@b", "redis://127.0.0.1/?user=a@b");
}

#[test]
fn connections_are_split_evenly() {
    assert_eq!(split_connections(48, 3), [16, 16, 16]);
    assert_eq!(split_connections(50, 3), [17, 17, 16]);
    assert_eq!(split_connections(48, 1), [48]);
}

fn run(requests: u64, duration_us: u64, p50_us: u64, p99_us: u64) -> WrkRun {
    WrkRun {
        requests,
        duration_us,
        p50_us,
        p99_us,
        ..WrkRun::default()
    }
}

#[test]
fn parse_wrk_reads_the_done_line() {
    let stdout = "Running 10s test @ http://127.0.0.1:1/v1/chat/completions\n  1 threads and 16 connections\n\
        TANDEM_BENCH_WRK {\"requests\":1000,\"duration_us\":10000000,\"bytes\":5000,\"connect_errors\":0,\
        \"read_errors\":1,\"write_errors\":0,\"status_errors\":2,\"timeouts\":3,\"mean_us\":812.5,\
        \"p50_us\":700,\"p90_us\":900,\"p99_us\":1500,\"max_us\":9000}\n";
    let parsed = parse_wrk(stdout).unwrap();
    assert_eq!(
        parsed,
        WrkRun {
            requests: 1000,
            duration_us: 10_000_000,
            bytes: 5000,
            connect_errors: 0,
            read_errors: 1,
            write_errors: 0,
            status_errors: 2,
            timeouts: 3,
            mean_us: 812.5,
            p50_us: 700,
            p90_us: 900,
            p99_us: 1500,
            max_us: 9000,
        }
    );
    assert_eq!(parsed.socket_errors(), 4);
    assert!(parse_wrk("Running 10s test\n").is_err());
}

#[test]
fn combine_sums_throughput_and_takes_the_worst_percentiles() {
    let load = combine(&[
        run(1000, 10_000_000, 700, 1500),
        run(2000, 10_000_000, 600, 2500),
        run(500, 5_000_000, 900, 1000),
    ]);
    assert_eq!(
        load,
        Load {
            requests: 3500,
            requests_per_sec: 400.0,
            p50_ms: 0.9,
            p90_ms: 0.0,
            p99_ms: 2.5,
            max_ms: 0.0,
            status_errors: 0,
            socket_errors: 0,
        }
    );
}

#[test]
fn records_are_consistent_when_every_answer_is_recorded() {
    let records = |answered, rows, ok_rows| Records {
        answered,
        rows,
        ok_rows,
        cut_bound: 96,
        ..Records::default()
    };
    assert!(records(1000, 1000, 1000).consistent());
    // Requests cut at the end of a wrk run, recorded as answered or as cancelled.
    assert!(records(1000, 1040, 1030).consistent());
    // An answered request missing from the table.
    assert!(!records(1000, 1000, 999).consistent());
    // More extra rows than cut requests can explain.
    assert!(!records(1000, 1097, 1097).consistent());
}

#[test]
fn wrk_script_sets_method_body_and_key() {
    let script = wrk_script("testkit/bench?tokens=16", Some("tdm_abc"));
    assert!(script.contains("wrk.method = \"POST\""));
    let body = script
        .split_once("wrk.body = [==[")
        .and_then(|(_, rest)| rest.split_once("]==]"))
        .unwrap()
        .0;
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "model": "testkit/bench?tokens=16",
            "messages": [{"role": "user", "content": "Benchmark: answer with the scripted tokens."}],
        })
    );
    assert!(script.contains("wrk.headers[\"Authorization\"] = [==[Bearer tdm_abc]==]"));
    assert!(script.contains("TANDEM_BENCH_WRK {\"requests\":%d"));
    assert!(!wrk_script("bench?tokens=16", None).contains("Authorization"));
}
