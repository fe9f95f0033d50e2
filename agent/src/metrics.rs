//! Training metrics on disk: a `metrics.csv` anyone can open and TensorBoard event files, under
//! CleanRL's metric names so curves compare directly with the Python baselines.
//!
//! The TensorBoard format is small enough to write directly (length-prefixed, CRC32C-masked
//! records holding protobuf `Event`s with scalar summaries), which keeps protobuf code
//! generation out of the build.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Failures while writing metrics; they name the file so a full disk or a bad path is obvious.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The file could not be written.
    #[error("cannot write metrics file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A name that would break the CSV.
    #[error("metric name {0:?} contains a comma or newline; CSV columns must be plain names")]
    BadName(String),
}

/// Every metric's name, written once: CleanRL's where CleanRL has one.
pub mod names {
    /// Mean return of the episodes that ended during the rollout.
    pub const EPISODIC_RETURN: &str = "charts/episodic_return";
    /// Mean length of those episodes.
    pub const EPISODIC_LENGTH: &str = "charts/episodic_length";
    /// Training env steps per second (rollout + update time only).
    pub const SPS: &str = "charts/SPS";
    /// Adam's learning rate for the update.
    pub const LEARNING_RATE: &str = "charts/learning_rate";
    /// Mean return of the periodic evaluation.
    pub const EVAL_MEAN_RETURN: &str = "eval/mean_return";
    /// Success rate of the periodic evaluation.
    pub const EVAL_SUCCESS_RATE: &str = "eval/success_rate";
    /// Clipped surrogate loss.
    pub const POLICY_LOSS: &str = "losses/policy_loss";
    /// Value loss.
    pub const VALUE_LOSS: &str = "losses/value_loss";
    /// Mean policy entropy.
    pub const ENTROPY: &str = "losses/entropy";
    /// `−log ratio` KL estimate.
    pub const OLD_APPROX_KL: &str = "losses/old_approx_kl";
    /// `(ratio − 1) − log ratio` KL estimate.
    pub const APPROX_KL: &str = "losses/approx_kl";
    /// Fraction of ratios outside the clip range.
    pub const CLIPFRAC: &str = "losses/clipfrac";
    /// Explained variance of the value function.
    pub const EXPLAINED_VARIANCE: &str = "losses/explained_variance";
    /// Gradient norm before clipping.
    pub const GRAD_NORM: &str = "losses/grad_norm";
    /// Seconds collecting the rollout.
    pub const ROLLOUT_SECONDS: &str = "perf/rollout_seconds";
    /// Seconds in the PPO update.
    pub const UPDATE_SECONDS: &str = "perf/update_seconds";
    /// Of the update: GAE, stacking the rollout, selecting each minibatch.
    pub const BATCHING_SECONDS: &str = "perf/batching_seconds";
    /// Of the update: the actor's replay (forward, then a continuous policy's log-probabilities
    /// and entropies; a categorical policy's are part of the loss).
    pub const ACTOR_SECONDS: &str = "perf/actor_seconds";
    /// The critic's half of the replay (values, value loss, backward) on the trainer's shard.
    pub const CRITIC_SECONDS: &str = "perf/critic_seconds";
    /// Of the update: the trainer's thread waiting for the other update shards (0 with one).
    pub const SHARD_WAIT_SECONDS: &str = "perf/shard_wait_seconds";
    /// Of the update: ratios, the policy loss and their statistics (for a categorical policy
    /// also its log-probabilities, entropies and the loss's gradient in the logits).
    pub const LOSS_SECONDS: &str = "perf/loss_seconds";
    /// Of the update: the actor's backpropagation.
    pub const BACKWARD_SECONDS: &str = "perf/backward_seconds";
    /// Of the update: gradient clipping, Adam and weight constraints.
    pub const OPTIMIZER_SECONDS: &str = "perf/optimizer_seconds";
    /// Wall-clock seconds since the run started (evaluations and checkpoints included),
    /// summed over its sessions up to the checkpoint each resumed from.
    pub const WALL_SECONDS: &str = "perf/wall_seconds";
}

/// Every metric a run logs, in CSV column order.
pub const COLUMNS: &[&str] = &[
    names::EPISODIC_RETURN,
    names::EPISODIC_LENGTH,
    names::SPS,
    names::LEARNING_RATE,
    names::EVAL_MEAN_RETURN,
    names::EVAL_SUCCESS_RATE,
    names::POLICY_LOSS,
    names::VALUE_LOSS,
    names::ENTROPY,
    names::OLD_APPROX_KL,
    names::APPROX_KL,
    names::CLIPFRAC,
    names::EXPLAINED_VARIANCE,
    names::GRAD_NORM,
    names::ROLLOUT_SECONDS,
    names::UPDATE_SECONDS,
    names::BATCHING_SECONDS,
    names::ACTOR_SECONDS,
    names::CRITIC_SECONDS,
    names::SHARD_WAIT_SECONDS,
    names::LOSS_SECONDS,
    names::BACKWARD_SECONDS,
    names::OPTIMIZER_SECONDS,
    names::WALL_SECONDS,
];

/// One row of scalars for one global step, e.g. `charts/episodic_return` = 187.0.
pub type Scalars = BTreeMap<String, f64>;

/// Writes every logged scalar to both `metrics.csv` and a TensorBoard event file.
pub struct MetricsWriter {
    csv_path: PathBuf,
    csv: BufWriter<File>,
    columns: Vec<String>,
    header_pending: bool,
    events_path: PathBuf,
    events: BufWriter<File>,
}

impl MetricsWriter {
    /// Opens the metrics of a run directory: new ones, or with `resume_at` (the step of the
    /// checkpoint being resumed) the existing ones, cut back to that step.
    ///
    /// CSV columns are `columns` (metrics logged only now and then, like evaluations, leave
    /// their cell empty); when empty, the first row's names fix them. Names outside the columns
    /// still go to TensorBoard, and a resumed run keeps the existing header. Rows a killed run
    /// logged after its last checkpoint are dropped from the CSV (the resumed run logs those
    /// steps again), and the new event file starts with a session-start event at the next
    /// step, which tells TensorBoard to discard the older files' events from there on.
    pub fn open(
        run_dir: &Path,
        resume_at: Option<u64>,
        columns: &[&str],
    ) -> Result<Self, MetricsError> {
        let resume = resume_at.is_some();
        let csv_path = run_dir.join("metrics.csv");
        if let Some(step) = resume_at {
            truncate_csv(&csv_path, step)?;
        }
        let existing: Vec<String> = if resume {
            std::fs::read_to_string(&csv_path)
                .ok()
                .and_then(|text| text.lines().next().map(str::to_owned))
                .map(|header| header.split(',').skip(1).map(str::to_owned).collect())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let header_pending = existing.is_empty();
        let columns = if header_pending {
            columns.iter().map(|c| c.to_string()).collect()
        } else {
            existing
        };
        let csv = OpenOptions::new()
            .create(true)
            .append(resume)
            .write(true)
            .truncate(!resume)
            .open(&csv_path)
            .map_err(|source| MetricsError::Io {
                path: csv_path.clone(),
                source,
            })?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        // TensorBoard reads every events.out.tfevents.* file in the directory, so a resumed
        // run simply adds a new file.
        let events_path = run_dir.join(format!(
            "events.out.tfevents.{}.wormnet.{}",
            now as u64,
            std::process::id()
        ));
        let events = File::create(&events_path).map_err(|source| MetricsError::Io {
            path: events_path.clone(),
            source,
        })?;
        let mut writer = MetricsWriter {
            csv_path,
            csv: BufWriter::new(csv),
            columns,
            header_pending,
            events_path,
            events: BufWriter::new(events),
        };
        let header = event_bytes(now, 0, EventBody::FileVersion("brain.Event:2"));
        writer.write_record(&header)?;
        if let Some(step) = resume_at {
            let start = event_bytes(now, step as i64 + 1, EventBody::SessionStart);
            writer.write_record(&start)?;
        }
        Ok(writer)
    }

    /// Where the CSV goes, for messages and plots.
    pub fn csv_path(&self) -> &Path {
        &self.csv_path
    }

    /// Appends one step's scalars to both outputs and flushes them, so a killed run loses at
    /// most the row being written.
    pub fn log(&mut self, step: u64, scalars: &Scalars) -> Result<(), MetricsError> {
        if let Some(bad) = scalars.keys().find(|k| k.contains([',', '\n', '\r'])) {
            return Err(MetricsError::BadName(bad.clone()));
        }
        let csv_err = |source| MetricsError::Io {
            path: self.csv_path.clone(),
            source,
        };
        if self.header_pending {
            if self.columns.is_empty() {
                self.columns = scalars.keys().cloned().collect();
            }
            self.header_pending = false;
            let header = std::iter::once("global_step".to_string())
                .chain(self.columns.iter().cloned())
                .collect::<Vec<_>>()
                .join(",");
            writeln!(self.csv, "{header}").map_err(csv_err)?;
        }
        let mut row = step.to_string();
        for column in &self.columns {
            row.push(',');
            if let Some(v) = scalars.get(column) {
                row.push_str(&v.to_string());
            }
        }
        writeln!(self.csv, "{row}")
            .and_then(|_| self.csv.flush())
            .map_err(|source| MetricsError::Io {
                path: self.csv_path.clone(),
                source,
            })?;

        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let event = event_bytes(now, step as i64, EventBody::Scalars(scalars));
        self.write_record(&event)?;
        self.events.flush().map_err(|source| MetricsError::Io {
            path: self.events_path.clone(),
            source,
        })
    }

    /// Frames one serialized `Event` as a TFRecord: len, masked crc(len), data, masked crc(data).
    fn write_record(&mut self, data: &[u8]) -> Result<(), MetricsError> {
        let len = (data.len() as u64).to_le_bytes();
        let mut buf = Vec::with_capacity(data.len() + 16);
        buf.extend_from_slice(&len);
        buf.extend_from_slice(&masked_crc(&len).to_le_bytes());
        buf.extend_from_slice(data);
        buf.extend_from_slice(&masked_crc(data).to_le_bytes());
        self.events
            .write_all(&buf)
            .map_err(|source| MetricsError::Io {
                path: self.events_path.clone(),
                source,
            })
    }
}

/// TFRecord's CRC masking, which keeps CRCs of data that itself contains CRCs well distributed.
fn masked_crc(data: &[u8]) -> u32 {
    let crc = crc32c::crc32c(data);
    (crc.rotate_right(15)).wrapping_add(0xa282_ead8)
}

enum EventBody<'a> {
    FileVersion(&'a str),
    Scalars(&'a Scalars),
    /// `SessionLog { status = START }`: TensorBoard purges earlier events at or after its step.
    SessionStart,
}

/// Encodes `tensorflow.Event { wall_time=1, step=2, file_version=3 | summary=5 |
/// session_log=7 }` by hand; a scalar summary is
/// `Summary { repeated Value value=1 { tag=1, simple_value=2 } }`.
fn event_bytes(wall_time: f64, step: i64, body: EventBody<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    out.push(0x09); // field 1, fixed64
    out.extend_from_slice(&wall_time.to_le_bytes());
    out.push(0x10); // field 2, varint
    put_varint(&mut out, step as u64);
    match body {
        EventBody::FileVersion(v) => put_bytes(&mut out, 3, v.as_bytes()),
        EventBody::Scalars(scalars) => {
            let mut summary = Vec::new();
            for (tag, value) in scalars {
                let mut v = Vec::new();
                put_bytes(&mut v, 1, tag.as_bytes());
                v.push(0x15); // field 2, fixed32
                v.extend_from_slice(&(*value as f32).to_le_bytes());
                put_bytes(&mut summary, 1, &v);
            }
            put_bytes(&mut out, 5, &summary);
        }
        // SessionLog.status (field 1, varint) = START (1).
        EventBody::SessionStart => put_bytes(&mut out, 7, &[0x08, 0x01]),
    }
    out
}

/// Drops the rows of `metrics.csv` logged after `step` (by a run killed after its last
/// checkpoint), keeping the header; the file is replaced atomically.
fn truncate_csv(path: &Path, step: u64) -> Result<(), MetricsError> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let mut kept = String::with_capacity(text.len());
    for (i, line) in text.lines().enumerate() {
        let row_step = line.split(',').next().and_then(|s| s.parse::<u64>().ok());
        if i == 0 || row_step.is_some_and(|s| s <= step) {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    if kept.len() != text.len() {
        crate::checkpoint::write_atomic(path, kept.as_bytes()).map_err(|e| MetricsError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        })?;
    }
    Ok(())
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_varint(out, u64::from(field << 3 | 2));
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads TFRecords back, checking both CRCs, the way TensorBoard's loader does.
    fn read_records(bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut records = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let len_bytes = &bytes[at..at + 8];
            let len = u64::from_le_bytes(len_bytes.try_into().unwrap()) as usize;
            let crc = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap());
            assert_eq!(crc, masked_crc(len_bytes), "length CRC");
            let data = &bytes[at + 12..at + 12 + len];
            let crc = u32::from_le_bytes(bytes[at + 12 + len..at + 16 + len].try_into().unwrap());
            assert_eq!(crc, masked_crc(data), "data CRC");
            records.push(data.to_vec());
            at += 16 + len;
        }
        records
    }

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        // The CRC-32C check value of "123456789" is 0xE3069283 (RFC 3720).
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn writes_csv_and_readable_event_records() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = MetricsWriter::open(dir.path(), None, &[]).unwrap();
        let mut s = Scalars::new();
        s.insert("charts/episodic_return".into(), 21.5);
        s.insert("losses/approx_kl".into(), 0.01);
        w.log(128, &s).unwrap();
        s.insert("charts/episodic_return".into(), 40.0);
        w.log(256, &s).unwrap();
        drop(w);

        let csv = std::fs::read_to_string(dir.path().join("metrics.csv")).unwrap();
        let lines: Vec<_> = csv.lines().collect();
        assert_eq!(
            lines,
            [
                "global_step,charts/episodic_return,losses/approx_kl",
                "128,21.5,0.01",
                "256,40,0.01"
            ]
        );

        let events: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("events.out"))
            .collect();
        assert_eq!(events.len(), 1);
        let records = read_records(&std::fs::read(events[0].path()).unwrap());
        assert_eq!(records.len(), 3, "file version + two scalar events");
        assert!(records[0].windows(13).any(|w| w == b"brain.Event:2"));
        let tag = b"charts/episodic_return";
        assert!(records[2].windows(tag.len()).any(|w| w == tag));
        assert!(records[2]
            .windows(4)
            .any(|w| w == 40.0f32.to_le_bytes().as_slice()));
    }

    #[test]
    fn resume_appends_under_the_existing_header() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Scalars::new();
        s.insert("charts/SPS".into(), 1000.0);
        MetricsWriter::open(dir.path(), None, &[])
            .unwrap()
            .log(1, &s)
            .unwrap();
        MetricsWriter::open(dir.path(), Some(1), &[])
            .unwrap()
            .log(2, &s)
            .unwrap();
        let csv = std::fs::read_to_string(dir.path().join("metrics.csv")).unwrap();
        assert_eq!(csv, "global_step,charts/SPS\n1,1000\n2,1000\n");
    }

    #[test]
    fn resume_drops_rows_logged_after_the_checkpoint_and_tells_tensorboard() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Scalars::new();
        s.insert("charts/SPS".into(), 1000.0);
        let mut w = MetricsWriter::open(dir.path(), None, &[]).unwrap();
        for step in [256, 512, 768] {
            w.log(step, &s).unwrap();
        }
        drop(w);
        // The run died after logging 768 but its checkpoint is at 512: 768 is logged again.
        let mut w = MetricsWriter::open(dir.path(), Some(512), &[]).unwrap();
        w.log(768, &s).unwrap();
        let events = std::fs::read(&w.events_path).unwrap();
        drop(w);
        let csv = std::fs::read_to_string(dir.path().join("metrics.csv")).unwrap();
        assert_eq!(
            csv,
            "global_step,charts/SPS\n256,1000\n512,1000\n768,1000\n"
        );
        // The new event file: version, session start at 513, then the scalars.
        let records = read_records(&events);
        assert_eq!(records.len(), 3);
        assert_eq!(records[1][9], 0x10, "step field");
        assert_eq!(&records[1][10..12], &[0x81, 0x04], "step 513 as a varint");
        assert_eq!(
            &records[1][12..],
            &[0x3a, 0x02, 0x08, 0x01],
            "session_log START"
        );
    }

    #[test]
    fn declared_columns_keep_sparse_metrics_in_the_csv() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = MetricsWriter::open(dir.path(), None, &["a", "eval/x"]).unwrap();
        let mut s = Scalars::new();
        s.insert("a".into(), 1.0);
        w.log(1, &s).unwrap();
        s.insert("eval/x".into(), 2.0);
        w.log(2, &s).unwrap();
        let csv = std::fs::read_to_string(dir.path().join("metrics.csv")).unwrap();
        assert_eq!(csv, "global_step,a,eval/x\n1,1,\n2,1,2\n");
    }

    #[test]
    fn rejects_names_that_would_break_the_csv() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = MetricsWriter::open(dir.path(), None, &[]).unwrap();
        let mut s = Scalars::new();
        s.insert("a,b".into(), 1.0);
        assert!(matches!(w.log(1, &s), Err(MetricsError::BadName(_))));
    }
}
