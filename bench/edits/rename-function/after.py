"""Read simple key=value configuration files."""


def parse_record(line):
    key, _, value = line.partition("=")
    return key.strip(), value.strip()


def parse_lines(text):
    out = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        key, value = parse_record(line)
        out[key] = value
    return out


def load(path):
    with open(path, encoding="utf-8") as f:
        return parse_lines(f.read())


def dump(values):
    return "\n".join(f"{k}={v}" for k, v in sorted(values.items()))
