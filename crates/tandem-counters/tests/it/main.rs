//! Integration tests of the Redis counters against a real Redis server (`TANDEM_TEST_REDIS_URL`).

#[cfg(test)]
mod counters;
