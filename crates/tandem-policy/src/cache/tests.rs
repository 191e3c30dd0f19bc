//! Unit tests for the entity memo: hits, misses and the capacity bound.

use std::cell::Cell;

use cedar_policy::Entities;
use pretty_assertions::assert_eq;

use crate::cache::{CAPACITY, EntityCache};
use crate::{Action, Principal, Query};

fn query(user: &str, tool: &str) -> Query {
    Query {
        principal: Principal {
            user: user.to_owned(),
            groups: vec!["platform".to_owned()],
            project: None,
            key_id: None,
        },
        action: Action::UseTool {
            name: tool.to_owned(),
        },
        context_tokens: 0,
        tools: 1,
        api: "chat".to_owned(),
        stream: false,
    }
}

#[test]
fn builds_once_per_principal_and_action() {
    let cache = EntityCache::default();
    let builds = Cell::new(0);
    let build = || {
        builds.set(builds.get() + 1);
        Ok(Entities::empty())
    };
    let mut q = query("alice", "read_file");
    cache.get_or_build(&q, build).unwrap();
    // The context does not matter.
    q.context_tokens = 99;
    q.stream = true;
    cache.get_or_build(&q, build).unwrap();
    assert_eq!(builds.get(), 1);

    cache
        .get_or_build(&query("bob", "read_file"), build)
        .unwrap();
    cache
        .get_or_build(&query("alice", "exec_command"), build)
        .unwrap();
    let mut other_groups = query("alice", "read_file");
    other_groups.principal.groups.push("contractors".to_owned());
    cache.get_or_build(&other_groups, build).unwrap();
    assert_eq!((builds.get(), cache.len()), (4, 4));
}

#[test]
fn build_errors_are_not_cached() {
    let cache = EntityCache::default();
    let q = query("alice", "read_file");
    assert_eq!(
        cache.get_or_build(&q, || Err("boom".to_owned())).err(),
        Some("boom".to_owned())
    );
    assert_eq!(cache.len(), 0);
}

#[test]
fn never_holds_more_than_its_capacity() {
    let cache = EntityCache::default();
    for i in 0..CAPACITY + 10 {
        cache
            .get_or_build(&query(&format!("user-{i}"), "t"), || Ok(Entities::empty()))
            .unwrap();
    }
    assert_eq!(cache.len(), CAPACITY);
    // The newest entry is there.
    let last = query(&format!("user-{}", CAPACITY + 9), "t");
    cache
        .get_or_build(&last, || Err("should be cached".to_owned()))
        .unwrap();
}
