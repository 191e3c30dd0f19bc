use std::fs;
use std::path::Path;

pub fn read_config(path: &Path) -> Result<String, String> {
    if !path.exists() {
        return Err(format!("config not found: {}", path.display()));
    }
    fs::read_to_string(path).map_err(|err| format!("cannot read {}: {err}", path.display()))
}

pub fn config_or_default(path: &Path) -> String {
    match read_config(path) {
        Ok(text) => text,
        Err(message) => {
            eprintln!("warning: {message}; using defaults");
            String::new()
        }
    }
}
