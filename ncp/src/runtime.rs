//! What the linked libtorch can do on this machine, so a user can see why training picked a
//! device or thread count before anything else goes wrong.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The PyTorch release tch 0.26 is built against; anything else is a mismatch worth reporting.
pub const EXPECTED_LIBTORCH: &str = "2.13.0";

/// Facts about the libtorch this process actually loaded, gathered once for `wormnet info`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RuntimeInfo {
    /// Version string of the loaded libtorch (e.g. `2.13.0+cu130`), if it could be found.
    pub libtorch_version: Option<String>,
    /// Directory the process loaded libtorch from.
    pub libtorch_dir: Option<PathBuf>,
    /// Directory the build script baked into the rpath.
    pub libtorch_build_dir: String,
    /// Whether libtorch's CUDA backend library could be loaded (it exists only in CUDA builds).
    pub cuda_backend: Result<PathBuf, String>,
    /// Whether libtorch sees a CUDA device.
    pub cuda_available: bool,
    /// How many CUDA devices.
    pub cuda_devices: i64,
    /// Whether cuDNN is usable.
    pub cudnn_available: bool,
    /// libtorch's intra-op threads.
    pub cpu_threads: i32,
    /// libtorch's inter-op threads.
    pub interop_threads: i32,
    /// Whether libtorch was built with MKL.
    pub mkl: bool,
    /// Whether libtorch was built with OpenMP.
    pub openmp: bool,
    /// Versions of wormnet and the crates that decide behaviour (from Cargo.lock at build time).
    pub crates: Vec<(String, String)>,
}

impl RuntimeInfo {
    /// Queries libtorch; touching it also proves the shared library was found at run time.
    pub fn gather() -> Self {
        let cuda_backend = load_cuda_backend();
        let libtorch_dir = loaded_libtorch_dir();
        let libtorch_version = libtorch_dir.as_deref().and_then(read_version);
        let mut crates = vec![("wormnet".to_string(), env!("CARGO_PKG_VERSION").to_string())];
        crates.extend(
            env!("WORMNET_DEP_VERSIONS")
                .split(',')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        RuntimeInfo {
            libtorch_version,
            libtorch_dir,
            libtorch_build_dir: env!("WORMNET_LIBTORCH_LIB").to_string(),
            cuda_backend,
            cuda_available: tch::Cuda::is_available(),
            cuda_devices: tch::Cuda::device_count(),
            cudnn_available: tch::Cuda::cudnn_is_available(),
            cpu_threads: tch::get_num_threads(),
            interop_threads: tch::get_num_interop_threads(),
            mkl: tch::utils::has_mkl(),
            openmp: tch::utils::has_openmp(),
            crates,
        }
    }

    /// True when the loaded libtorch is the release tch was written for.
    pub fn version_matches(&self) -> bool {
        self.libtorch_version
            .as_deref()
            .is_some_and(|v| v.split('+').next() == Some(EXPECTED_LIBTORCH))
    }
}

/// Why a `--device` / `run.device` value cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// Not `cpu`, `cuda` or `cuda:N`.
    #[error("unknown device `{0}`: use cpu, cuda or cuda:N")]
    Unknown(String),
    /// CUDA asked for on a machine where libtorch sees none.
    #[error(
        "device `{0}` requested, but libtorch sees no CUDA device on this machine \
         (`wormnet info` shows why); use --device cpu"
    )]
    NoCuda(String),
    /// A CUDA index past the last device.
    #[error("device `{name}` requested, but only {count} CUDA device(s) exist")]
    NoSuchCuda {
        /// What was asked for.
        name: String,
        /// How many devices exist.
        count: usize,
    },
}

/// Parses `cpu`, `cuda`, `gpu`, `cuda:N`, failing clearly when CUDA is asked for but absent.
pub fn parse_device(name: &str) -> Result<tch::Device, DeviceError> {
    let name = name.trim().to_ascii_lowercase();
    let cuda = |index: usize| -> Result<tch::Device, DeviceError> {
        if !cuda_available() {
            return Err(DeviceError::NoCuda(name.clone()));
        }
        let count = tch::Cuda::device_count() as usize;
        if index >= count {
            return Err(DeviceError::NoSuchCuda {
                name: name.clone(),
                count,
            });
        }
        Ok(tch::Device::Cuda(index))
    };
    match name.as_str() {
        "cpu" => Ok(tch::Device::Cpu),
        "cuda" | "gpu" => cuda(0),
        other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(i)) => cuda(i),
            _ => Err(DeviceError::Unknown(name.clone())),
        },
    }
}

/// Whether libtorch sees a CUDA device, after loading its CUDA backend: `tch::Cuda::is_available`
/// alone answers false on a GPU machine (see [`load_cuda_backend`]).
pub fn cuda_available() -> bool {
    let _ = load_cuda_backend();
    tch::Cuda::is_available()
}

/// Loads libtorch's CUDA backend so that CUDA devices become visible.
///
/// The backend registers itself with libtorch when its library is loaded, but nothing in our
/// binary references its symbols, so the linker drops it (`--as-needed`) and CUDA would look
/// absent even on a GPU machine. Loading it costs time, so only the commands that may use a GPU
/// call this. Safe to call repeatedly; the result of the first call is kept.
pub fn load_cuda_backend() -> Result<PathBuf, String> {
    static LOADED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    LOADED
        .get_or_init(|| {
            let dir = loaded_libtorch_dir().ok_or("libtorch is not loaded in this process")?;
            let lib = dir.join("libtorch_cuda.so");
            if !lib.exists() {
                return Err(format!(
                    "{} does not exist (a CPU-only libtorch)",
                    lib.display()
                ));
            }
            let c_path = std::ffi::CString::new(lib.as_os_str().as_encoded_bytes())
                .map_err(|e| e.to_string())?;
            // SAFETY: dlopen with a valid NUL-terminated path; the handle is deliberately never
            // closed because libtorch keeps pointers into the library for the process lifetime.
            let handle =
                unsafe { libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
            if handle.is_null() {
                // SAFETY: dlerror returns a thread-local C string or null.
                let err = unsafe { libc::dlerror() };
                let msg = if err.is_null() {
                    "unknown dlopen error".to_string()
                } else {
                    unsafe { std::ffi::CStr::from_ptr(err) }
                        .to_string_lossy()
                        .into_owned()
                };
                return Err(format!("could not load {}: {msg}", lib.display()));
            }
            Ok(lib)
        })
        .clone()
}

/// Finds the directory of the libtorch shared library mapped into this process.
fn loaded_libtorch_dir() -> Option<PathBuf> {
    // Make sure libtorch is initialised (and therefore mapped) before looking.
    let _ = tch::get_num_threads();
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .find(|path| {
            Path::new(path)
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libtorch_cpu.") || n.starts_with("libc10."))
        })
        .and_then(|path| Path::new(path).parent().map(Path::to_path_buf))
}

/// Reads the version next to a libtorch `lib/` directory: `version.py` in a PyTorch wheel,
/// `build-version` in a standalone libtorch archive.
fn read_version(lib_dir: &Path) -> Option<String> {
    let root = lib_dir.parent()?;
    if let Ok(text) = std::fs::read_to_string(root.join("version.py")) {
        for line in text.lines() {
            if let Some(rest) = line.trim().strip_prefix("__version__") {
                let v = rest.trim_start_matches([' ', '=', ':']).trim();
                let v = v.trim_start_matches("str").trim_matches(['\'', '"', ' ']);
                if !v.is_empty() {
                    return Some(v.to_string());
                }
            }
        }
    }
    std::fs::read_to_string(root.join("build-version"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_libtorch_is_loaded_and_computes() {
        // A real op through libtorch: (1..=4) · (1..=4) = 30, with autograd giving 2x.
        let x = tch::Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]).set_requires_grad(true);
        let y = (&x * &x).sum(tch::Kind::Float);
        assert_eq!(y.double_value(&[]), 30.0);
        y.backward();
        let grad: Vec<f32> = Vec::try_from(x.grad()).expect("gradient as Vec");
        assert_eq!(grad, vec![2.0, 4.0, 6.0, 8.0]);
    }

    #[test]
    fn reports_the_expected_libtorch() {
        let info = RuntimeInfo::gather();
        assert!(
            info.libtorch_dir.is_some(),
            "libtorch not found in /proc/self/maps"
        );
        assert!(
            info.version_matches(),
            "loaded libtorch {:?}",
            info.libtorch_version
        );
        assert!(info.cpu_threads >= 1);
        assert!(info.crates.iter().any(|(k, _)| k == "tch"));
    }
}
