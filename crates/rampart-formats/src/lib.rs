//! Bounded, non-executing parsers for model file formats.
//!
//! Every parser reads hostile bytes through one bounds-checked [`cursor::Cursor`], checks every
//! count and length against a `Limits` value before allocating, and reports failures through the
//! crate's single [`Error`] type, which always carries the byte offset where reading stopped.
//! Nothing here executes, imports or deserialises the content it inspects.
#![forbid(unsafe_code)]
#![deny(clippy::indexing_slicing)]
#![warn(missing_docs)]

pub mod compress;
pub mod cursor;
mod error;
pub mod gguf;
pub mod json;
pub mod keras;
pub mod npy;
pub mod onnx;
pub mod pickle;
pub mod protobuf;
pub mod safetensors;
pub mod savedmodel;
pub mod source;
pub mod tar;
pub mod zip;

pub use error::Error;
