//! A running capture: a source pushing `f32` frames into a lock-free ring, and a worker thread
//! turning them into the spool.
//!
//! The cpal callback runs on the audio host's real-time thread: it only converts samples and
//! pushes them into the ring (no allocation, no lock, no I/O); if the ring is full the samples
//! are dropped and counted. The worker drains the ring every few milliseconds, downmixes,
//! resamples and writes.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, SampleFormat, SizedSample};

use super::resample::Conditioner;
use super::spool::{SpoolInfo, SpoolWriter, duration_ms};
use super::synth::SpeechSynth;
use super::{AudioError, Source};

/// How long the worker sleeps when the ring is empty.
const POLL: Duration = Duration::from_millis(10);
/// Seconds of audio the ring holds: room for the worker to stall on a slow disk.
const RING_SECONDS: usize = 3;
/// The synthetic source imitates a common microphone format, so that it exercises the
/// downmix and the resampler like a real device does.
const SYNTH_RATE: u32 = 48_000;
const SYNTH_CHANNELS: u16 = 2;
const SYNTH_BLOCK: Duration = Duration::from_millis(10);
/// An input that delivers nothing for this long has failed, whether or not its backend said
/// so (ALSA's pulse plugin, for one, just goes quiet when its server dies). A working input
/// delivers samples, silent or not, every few milliseconds.
const STALL: Duration = Duration::from_secs(2);
/// How long cpal may wait to start the stream; ALSA also uses it as its poll timeout, after
/// which it checks whether the device is still there.
const OPEN_TIMEOUT: Duration = Duration::from_secs(2);
/// After a device error, this long without audio means the stream is dead.
const ERROR_GRACE: Duration = Duration::from_millis(300);

/// What the callbacks and the worker share.
#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    dropped: AtomicU64,
    xruns: AtomicU64,
    device_errors: AtomicU64,
    /// The first error the device reported other than an overrun. A backend may go on
    /// reporting errors in a loop (ALSA's pulse plugin does when its server dies), so only
    /// the first is kept and logged.
    device_error: Mutex<Option<String>>,
    /// Why the capture ended before it was stopped.
    failure: Mutex<Option<String>>,
}

impl Shared {
    fn device_failed(&self, error: &cpal::Error) {
        if self.device_errors.fetch_add(1, Ordering::Relaxed) == 0 {
            tracing::warn!(%error, "the audio input reported an error");
            if let Ok(mut slot) = self.device_error.lock() {
                *slot = Some(error.to_string());
            }
        }
    }

    fn device_error(&self) -> Option<String> {
        self.device_error.lock().ok().and_then(|e| e.clone())
    }

    fn fail(&self, message: String) {
        if let Ok(mut failure) = self.failure.lock()
            && failure.is_none()
        {
            *failure = Some(message);
        }
    }

    fn failure(&self) -> Option<String> {
        self.failure.lock().ok().and_then(|f| f.clone())
    }
}

/// A running capture writing a 16 kHz mono 16-bit WAV spool.
///
/// Dropping it without [`Capture::stop`] stops it too and finalises the spool, but the result
/// is then only logged.
pub struct Capture {
    shared: Arc<Shared>,
    worker: Option<JoinHandle<Result<SpoolInfo, AudioError>>>,
    input: String,
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture")
            .field("input", &self.input)
            .finish()
    }
}

/// What a started source reports back to [`Capture::start`].
struct Started {
    input: String,
}

impl Capture {
    /// Starts recording `source` into a new spool at `spool_path` (parent directories are
    /// created). Returns once audio is flowing, or with the reason it cannot.
    pub fn start(source: Source, spool_path: &Path) -> Result<Capture, AudioError> {
        let writer = SpoolWriter::create(spool_path)?;
        let shared = Arc::new(Shared::default());
        let (ready_tx, ready_rx) = sync_channel::<Result<Started, AudioError>>(1);
        let worker_shared = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name("audio-capture".into())
            .spawn(move || match source {
                Source::Microphone => run_microphone(writer, worker_shared, ready_tx),
                Source::Synthetic { seed } => run_synthetic(seed, writer, worker_shared, ready_tx),
            });
        let worker = match spawned {
            Ok(worker) => worker,
            Err(e) => {
                let _ = std::fs::remove_file(spool_path);
                return Err(AudioError::io(
                    "starting the capture thread for",
                    spool_path,
                    e,
                ));
            }
        };
        match ready_rx.recv() {
            Ok(Ok(started)) => {
                tracing::info!(input = %started.input, spool = %spool_path.display(), "recording");
                Ok(Capture {
                    shared,
                    worker: Some(worker),
                    input: started.input,
                })
            }
            Ok(Err(error)) => {
                let _ = worker.join();
                let _ = std::fs::remove_file(spool_path);
                Err(error)
            }
            Err(_) => {
                let _ = worker.join();
                let _ = std::fs::remove_file(spool_path);
                Err(AudioError::ThreadPanicked("audio capture"))
            }
        }
    }

    /// The input being recorded, e.g. "Default Audio Device: 48000 Hz, 2 ch, f32".
    pub fn input(&self) -> &str {
        &self.input
    }

    /// Why the recording ended before it was stopped, if it did: the input failed or went
    /// quiet (device gone), or the spool could not be written. The spool keeps what was
    /// captured until then, finalised; [`Capture::stop`] reports the same reason in
    /// [`SpoolInfo::interrupted`].
    pub fn failure(&self) -> Option<String> {
        self.shared.failure()
    }

    /// Stops the input, writes what is still buffered, finalises the WAV header and fsyncs.
    pub fn stop(mut self) -> Result<SpoolInfo, AudioError> {
        self.finish()
    }

    fn finish(&mut self) -> Result<SpoolInfo, AudioError> {
        self.shared.stop.store(true, Ordering::SeqCst);
        let worker = self
            .worker
            .take()
            .ok_or(AudioError::ThreadPanicked("audio capture"))?;
        worker
            .join()
            .map_err(|_| AudioError::ThreadPanicked("audio capture"))?
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if self.worker.is_some() {
            match self.finish() {
                Ok(info) => {
                    tracing::warn!(spool = %info.path.display(), "capture dropped without stop")
                }
                Err(error) => tracing::error!(%error, "capture dropped without stop"),
            }
        }
    }
}

/// Whether the platform's audio host has a default input device that can tell its format.
pub fn microphone_available() -> bool {
    let host = cpal::default_host();
    host.default_input_device()
        .is_some_and(|device| device.default_input_config().is_ok())
}

fn run_microphone(
    writer: SpoolWriter,
    shared: Arc<Shared>,
    ready: SyncSender<Result<Started, AudioError>>,
) -> Result<SpoolInfo, AudioError> {
    let opened = open_microphone(&shared);
    let (stream, consumer, rate, channels, input) = match opened {
        Ok(opened) => opened,
        Err(error) => {
            let message = error.to_string();
            let _ = ready.send(Err(error));
            return Err(AudioError::Device(message));
        }
    };
    let conditioner = match Conditioner::new(rate, channels) {
        Ok(c) => c,
        Err(error) => {
            let message = error.to_string();
            let _ = ready.send(Err(error));
            return Err(AudioError::Resample(message));
        }
    };
    let _ = ready.send(Ok(Started {
        input: input.clone(),
    }));
    // The stream lives on this thread: cpal streams need not be Send on every platform.
    // Dropping it before the last drain stops the callbacks, so nothing arrives after it.
    let result = pump(
        consumer,
        channels,
        conditioner,
        writer,
        &shared,
        move || drop(stream),
    );
    finish_info(result, &shared, input)
}

type Opened = (cpal::Stream, rtrb::Consumer<f32>, u32, u16, String);

fn open_microphone(shared: &Arc<Shared>) -> Result<Opened, AudioError> {
    let host = cpal::default_host();
    let device = host.default_input_device().ok_or_else(|| {
        AudioError::NoInputDevice(format!("{} has no default input", host.id().name()))
    })?;
    let supported = device
        .default_input_config()
        .map_err(|e| AudioError::NoInputDevice(format!("{device}: {e}")))?;
    let config = supported.config();
    let rate = config.sample_rate;
    let channels = config.channels;
    let format = supported.sample_format();
    let input = format!("{device}: {rate} Hz, {channels} ch, {format}");
    let capacity = (rate as usize).max(8_000) * usize::from(channels.max(1)) * RING_SECONDS;
    let (producer, consumer) = rtrb::RingBuffer::<f32>::new(capacity);
    let stream = match format {
        SampleFormat::I8 => build::<i8>(&device, config, producer, shared),
        SampleFormat::I16 => build::<i16>(&device, config, producer, shared),
        SampleFormat::I24 => build::<cpal::I24>(&device, config, producer, shared),
        SampleFormat::I32 => build::<i32>(&device, config, producer, shared),
        SampleFormat::I64 => build::<i64>(&device, config, producer, shared),
        SampleFormat::U8 => build::<u8>(&device, config, producer, shared),
        SampleFormat::U16 => build::<u16>(&device, config, producer, shared),
        SampleFormat::U24 => build::<cpal::U24>(&device, config, producer, shared),
        SampleFormat::U32 => build::<u32>(&device, config, producer, shared),
        SampleFormat::U64 => build::<u64>(&device, config, producer, shared),
        SampleFormat::F32 => build::<f32>(&device, config, producer, shared),
        SampleFormat::F64 => build::<f64>(&device, config, producer, shared),
        other => return Err(AudioError::UnsupportedSampleFormat(other.to_string())),
    }?;
    stream
        .play()
        .map_err(|e| AudioError::Device(format!("{input}: starting: {e}")))?;
    Ok((stream, consumer, rate, channels, input))
}

fn build<T>(
    device: &cpal::Device,
    config: cpal::StreamConfig,
    mut producer: rtrb::Producer<f32>,
    shared: &Arc<Shared>,
) -> Result<cpal::Stream, AudioError>
where
    T: SizedSample,
    f32: FromSample<T>,
{
    let channels = usize::from(config.channels.max(1));
    let data_shared = Arc::clone(shared);
    let error_shared = Arc::clone(shared);
    device
        .build_input_stream::<T, _, _>(
            config,
            move |data: &[T], _info| {
                // Whole frames only, so the worker never sees channels shift.
                let mut n = producer.slots().min(data.len());
                n -= n % channels;
                if let Ok(chunk) = producer.write_chunk_uninit(n) {
                    chunk.fill_from_iter(data.iter().map(|s| s.to_sample::<f32>()));
                } else {
                    n = 0;
                }
                let lost = data.len() - n;
                if lost > 0 {
                    data_shared
                        .dropped
                        .fetch_add(lost as u64, Ordering::Relaxed);
                }
            },
            move |error: cpal::Error| match error.kind() {
                // An overrun loses a few milliseconds; the stream goes on.
                cpal::ErrorKind::Xrun => {
                    error_shared.xruns.fetch_add(1, Ordering::Relaxed);
                }
                // Whether the stream survives it shows in whether audio keeps coming: the
                // worker decides (see `pump`).
                _ => error_shared.device_failed(&error),
            },
            Some(OPEN_TIMEOUT),
        )
        .map_err(|e| AudioError::Device(format!("{device}: {e}")))
}

fn run_synthetic(
    seed: u64,
    writer: SpoolWriter,
    shared: Arc<Shared>,
    ready: SyncSender<Result<Started, AudioError>>,
) -> Result<SpoolInfo, AudioError> {
    let input =
        format!("synthetic speech (seed {seed}): {SYNTH_RATE} Hz, {SYNTH_CHANNELS} ch, f32");
    let conditioner = match Conditioner::new(SYNTH_RATE, SYNTH_CHANNELS) {
        Ok(c) => c,
        Err(error) => {
            let message = error.to_string();
            let _ = ready.send(Err(error));
            return Err(AudioError::Resample(message));
        }
    };
    let channels = usize::from(SYNTH_CHANNELS);
    let (mut producer, consumer) =
        rtrb::RingBuffer::<f32>::new(SYNTH_RATE as usize * channels * RING_SECONDS);
    let generator_shared = Arc::clone(&shared);
    let generator = std::thread::Builder::new()
        .name("audio-synth".into())
        .spawn(move || {
            let mut synth = SpeechSynth::new(seed, SYNTH_RATE);
            let frames = (SYNTH_RATE as u128 * SYNTH_BLOCK.as_millis() / 1000) as usize;
            let mut mono = vec![0.0f32; frames];
            let mut interleaved = Vec::with_capacity(frames * channels);
            let start = Instant::now();
            let mut blocks = 0u32;
            // Real time: each block is released when the clock says it has been "spoken".
            while !generator_shared.stop.load(Ordering::SeqCst) {
                blocks += 1;
                let due = start + SYNTH_BLOCK * blocks;
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                synth.fill(&mut mono);
                interleaved.clear();
                // A slightly weaker second channel, as from a second microphone.
                interleaved.extend(mono.iter().flat_map(|&s| [s, s * 0.9]));
                let (_, rest) = producer.push_partial_slice(&interleaved);
                if !rest.is_empty() {
                    generator_shared
                        .dropped
                        .fetch_add(rest.len() as u64, Ordering::Relaxed);
                }
            }
        });
    let generator = match generator {
        Ok(handle) => handle,
        Err(e) => {
            let error = AudioError::io("starting the synthetic source for", writer.path(), e);
            let message = error.to_string();
            let _ = ready.send(Err(error));
            return Err(AudioError::Device(message));
        }
    };
    let _ = ready.send(Ok(Started {
        input: input.clone(),
    }));
    let mut generator = Some(generator);
    let result = pump(
        consumer,
        SYNTH_CHANNELS,
        conditioner,
        writer,
        &shared,
        || {
            if let Some(handle) = generator.take()
                && handle.join().is_err()
            {
                shared.fail("the synthetic source panicked".into());
            }
        },
    );
    finish_info(result, &shared, input)
}

/// The worker loop: drain the ring into the spool until told to stop, then stop the source
/// (`stop_source`), drain what is left, flush the resampler and finalise the file.
///
/// If the input fails first (an error and no more audio, or no audio at all for [`STALL`]),
/// or the spool cannot be written, the spool is finalised at once with what it has, and the
/// reason is kept for [`Capture::failure`] and [`SpoolInfo::interrupted`].
fn pump(
    mut consumer: rtrb::Consumer<f32>,
    channels: u16,
    mut conditioner: Conditioner,
    mut writer: SpoolWriter,
    shared: &Shared,
    stop_source: impl FnOnce(),
) -> Result<(u64, u64, std::path::PathBuf), AudioError> {
    let channels = usize::from(channels.max(1));
    let mut scratch: Vec<f32> = Vec::new();
    let mut drain = |consumer: &mut rtrb::Consumer<f32>,
                     conditioner: &mut Conditioner,
                     writer: &mut SpoolWriter|
     -> Result<usize, AudioError> {
        let mut n = consumer.slots();
        n -= n % channels;
        if n == 0 {
            return Ok(0);
        }
        scratch.clear();
        if let Ok(chunk) = consumer.read_chunk(n) {
            let (a, b) = chunk.as_slices();
            scratch.extend_from_slice(a);
            scratch.extend_from_slice(b);
            chunk.commit_all();
        }
        conditioner.push(&scratch, &mut |mono| writer.write(mono))?;
        Ok(n)
    };
    let started = Instant::now();
    let mut last_audio = started;
    let mut write_failed = false;
    while !shared.stop.load(Ordering::SeqCst) {
        match drain(&mut consumer, &mut conditioner, &mut writer) {
            Ok(0) => {
                let quiet = last_audio.elapsed();
                let at = last_audio.duration_since(started).as_secs_f32();
                // An error followed by silence from the device: it is gone.
                if quiet >= ERROR_GRACE
                    && let Some(error) = shared.device_error()
                {
                    shared.fail(format!("the input failed after {at:.1} s: {error}"));
                    break;
                }
                if quiet >= STALL {
                    shared.fail(format!(
                        "the input delivered no audio after {at:.1} s (device gone or stalled)"
                    ));
                    break;
                }
                std::thread::sleep(POLL);
            }
            Ok(_) => last_audio = Instant::now(),
            Err(error) => {
                // The disk is full or gone: stop writing but keep what is in the spool.
                shared.fail(format!("writing the spool failed: {error}"));
                write_failed = true;
                break;
            }
        }
    }
    stop_source();
    if !write_failed {
        let tail = drain(&mut consumer, &mut conditioner, &mut writer)
            .and_then(|_| conditioner.finish(&mut |mono| writer.write(mono)));
        if let Err(error) = tail {
            shared.fail(format!("writing the spool failed: {error}"));
        }
    }
    let path = writer.path().to_path_buf();
    let finished = writer.finish();
    if let Some(failure) = shared.failure() {
        tracing::warn!(%failure, spool = %path.display(), "recording ended early; the spool keeps what was captured");
        // The visit goes on: wait for it to stop the capture, as after a normal recording.
        while !shared.stop.load(Ordering::SeqCst) {
            std::thread::sleep(POLL * 5);
        }
    }
    let (samples, bytes) = finished?;
    Ok((samples, bytes, path))
}

fn finish_info(
    result: Result<(u64, u64, std::path::PathBuf), AudioError>,
    shared: &Shared,
    input: String,
) -> Result<SpoolInfo, AudioError> {
    let (samples, bytes, path) = result?;
    let dropped_samples = shared.dropped.load(Ordering::Relaxed);
    if dropped_samples > 0 {
        tracing::warn!(dropped_samples, "the spool writer fell behind the input");
    }
    let xruns = shared.xruns.load(Ordering::Relaxed);
    let device_errors = shared.device_errors.load(Ordering::Relaxed);
    if xruns > 0 || device_errors > 0 {
        tracing::info!(xruns, device_errors, "input errors during the recording");
    }
    Ok(SpoolInfo {
        path,
        duration_ms: duration_ms(samples),
        bytes,
        dropped_samples,
        interrupted: shared.failure(),
        input,
    })
}
