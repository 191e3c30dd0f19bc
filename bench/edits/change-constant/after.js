// Retry an async operation with exponential backoff.

const MAX_RETRIES = 5;
const BASE_DELAY_MS = 100;

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function withRetry(operation) {
  let attempt = 0;
  for (;;) {
    try {
      return await operation();
    } catch (err) {
      attempt += 1;
      if (attempt > MAX_RETRIES) {
        throw err;
      }
      await sleep(BASE_DELAY_MS * 2 ** attempt);
    }
  }
}

module.exports = { withRetry, MAX_RETRIES };
