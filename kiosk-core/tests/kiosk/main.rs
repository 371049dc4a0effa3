//! kiosk-core's own tests, one binary: the tablet store, the audio path from capture to the
//! 3GP the server accepts (checked with ffprobe, ffmpeg and the `threegp` validator the server
//! uses). Tests that need a server are in the workspace's `tests/` crate.

mod audio;
mod audio_capture;
mod store;
mod tools;
