import json
import urllib.request


def fetch_json(url, timeout=30):
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read().decode("utf-8"))


def fetch_user(base, user_id):
    return fetch_json(f"{base}/users/{user_id}")


def fetch_repos(base, user_id):
    repos = fetch_json(f"{base}/users/{user_id}/repos")
    return [repo["name"] for repo in repos]
