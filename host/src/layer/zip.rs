//! The zip format, as much of it as Lambda layers need: files, directories
//! and symbolic links with their Unix modes, files deflated.
//!
//! [`write_zip`] takes [`ZipEntry`]s and writes them in the order given,
//! every entry stamped 1980-01-01 00:00 (the format's epoch), so the same
//! input always gives the same bytes. [`read_entries`] lists an archive from
//! its central directory and [`read_contents`] inflates one entry, checking
//! its size and CRC-32. Zip64, encryption, multi-disk archives and methods
//! other than stored and deflate are refused with a [`ZipError`].
//!
//! Written here instead of taken from the `zip` crate: any version of that
//! crate turns on default features of crates wasmtime shares (`indexmap`,
//! `crc32fast`), which would rebuild wasmtime for every consumer, while
//! `flate2`, already a dependency, does the deflate and the CRC and the
//! format itself is these few records (APPNOTE.TXT 4.3).

use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;

const LOCAL_HEADER_SIGNATURE: u32 = 0x0403_4b50;
const CENTRAL_HEADER_SIGNATURE: u32 = 0x0201_4b50;
const END_OF_CENTRAL_DIRECTORY_SIGNATURE: u32 = 0x0605_4b50;
const LOCAL_HEADER_BYTES: usize = 30;
const CENTRAL_HEADER_BYTES: usize = 46;
const END_OF_CENTRAL_DIRECTORY_BYTES: usize = 22;
/// The end record may be followed by a comment of up to this many bytes.
const MAX_COMMENT_BYTES: usize = 0xFFFF;
/// "Version needed to extract" 2.0: deflate and directories.
const VERSION_NEEDED: u16 = 20;
/// "Version made by": Unix (3) in the high byte, so readers honour the modes.
const VERSION_MADE_BY_UNIX: u16 = (3 << 8) | VERSION_NEEDED;
/// General purpose flag bit 11: names are UTF-8.
const FLAG_UTF8: u16 = 1 << 11;
/// General purpose flag bit 0: the entry is encrypted.
const FLAG_ENCRYPTED: u16 = 1;
const METHOD_STORED: u16 = 0;
const METHOD_DEFLATE: u16 = 8;
/// 1980-01-01 as an MS-DOS date (day 1, month 1, year 0); the time is 00:00:00.
const DOS_DATE_1980_01_01: u16 = (1 << 5) | 1;
/// The MS-DOS directory attribute, set beside the Unix mode for old readers.
const DOS_DIRECTORY_ATTRIBUTE: u32 = 0x10;
const UNIX_FILE_TYPE_MASK: u32 = 0o170_000;
const UNIX_DIRECTORY: u32 = 0o040_000;
const UNIX_REGULAR_FILE: u32 = 0o100_000;
const UNIX_SYMLINK: u32 = 0o120_000;

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file; its data is its contents.
    File,
    /// A directory; its name ends with `/` and it has no data.
    Directory,
    /// A symbolic link; its data is the link's target.
    Symlink,
}

/// One entry to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipEntry {
    /// The path inside the archive, `/`-separated; directories end with `/`.
    pub name: String,
    /// What it is.
    pub kind: EntryKind,
    /// Permission bits (`0o755`, `0o644`).
    pub mode: u32,
    /// File contents or link target; empty for a directory.
    pub data: Vec<u8>,
}

/// One entry as the central directory describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryInfo {
    /// The path inside the archive.
    pub name: String,
    /// What it is.
    pub kind: EntryKind,
    /// Permission bits, when the archive was made on Unix.
    pub mode: Option<u32>,
    /// Size once extracted, bytes.
    pub size: u64,
    method: u16,
    flags: u16,
    crc32: u32,
    compressed_size: u64,
    local_header_offset: usize,
}

/// Why an archive could not be written or read. Each reads as one line.
#[derive(Debug, thiserror::Error)]
pub enum ZipError {
    /// Not a zip archive, or cut short.
    #[error("not a zip archive: {0}")]
    NotAZip(&'static str),
    /// A zip archive using a feature this reader leaves out.
    #[error("unsupported zip archive: {0}")]
    Unsupported(String),
    /// A zip archive whose records or data are damaged.
    #[error("corrupt zip archive: {0}")]
    Corrupt(String),
    /// Too large for a zip without Zip64 (4 GiB, 65535 entries).
    #[error("too large for a zip archive: {0}")]
    TooLarge(String),
    /// Writing failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Writes `entries` as a zip archive to `out`, in the order given; returns
/// the archive's size in bytes.
pub fn write_zip(mut out: impl Write, entries: &[ZipEntry]) -> Result<u64, ZipError> {
    let mut central = Vec::new();
    let mut offset: u64 = 0;
    for entry in entries {
        let (method, stored) = match entry.kind {
            EntryKind::File => (METHOD_DEFLATE, deflate(&entry.data)?),
            EntryKind::Directory | EntryKind::Symlink => (METHOD_STORED, entry.data.clone()),
        };
        let mut crc = flate2::Crc::new();
        crc.update(&entry.data);
        let record = Record {
            name: entry.name.as_bytes(),
            method,
            crc32: crc.sum(),
            compressed_size: u32_field(stored.len() as u64, &entry.name)?,
            size: u32_field(entry.data.len() as u64, &entry.name)?,
        };
        let mut local = Vec::with_capacity(LOCAL_HEADER_BYTES + record.name.len());
        put_u32(&mut local, LOCAL_HEADER_SIGNATURE);
        put_u16(&mut local, VERSION_NEEDED);
        record.put_common(&mut local)?;
        put_u16(&mut local, 0); // extra field length
        local.extend_from_slice(record.name);
        out.write_all(&local)?;
        out.write_all(&stored)?;

        put_u32(&mut central, CENTRAL_HEADER_SIGNATURE);
        put_u16(&mut central, VERSION_MADE_BY_UNIX);
        put_u16(&mut central, VERSION_NEEDED);
        record.put_common(&mut central)?;
        put_u16(&mut central, 0); // extra field length
        put_u16(&mut central, 0); // comment length
        put_u16(&mut central, 0); // disk number
        put_u16(&mut central, 0); // internal attributes
        put_u32(&mut central, external_attributes(entry));
        put_u32(&mut central, u32_field(offset, &entry.name)?);
        central.extend_from_slice(record.name);
        offset += (local.len() + stored.len()) as u64;
    }
    let count = u16::try_from(entries.len())
        .map_err(|_| ZipError::TooLarge(format!("{} entries", entries.len())))?;
    let mut end = Vec::with_capacity(END_OF_CENTRAL_DIRECTORY_BYTES);
    put_u32(&mut end, END_OF_CENTRAL_DIRECTORY_SIGNATURE);
    put_u16(&mut end, 0); // this disk
    put_u16(&mut end, 0); // disk of the central directory
    put_u16(&mut end, count);
    put_u16(&mut end, count);
    put_u32(
        &mut end,
        u32_field(central.len() as u64, "the central directory")?,
    );
    put_u32(&mut end, u32_field(offset, "the central directory")?);
    put_u16(&mut end, 0); // comment length
    out.write_all(&central)?;
    out.write_all(&end)?;
    out.flush()?;
    Ok(offset + (central.len() + end.len()) as u64)
}

/// The fields local and central headers share, from the flags to the name length.
struct Record<'a> {
    name: &'a [u8],
    method: u16,
    crc32: u32,
    compressed_size: u32,
    size: u32,
}

impl Record<'_> {
    fn put_common(&self, out: &mut Vec<u8>) -> Result<(), ZipError> {
        let name_len = u16::try_from(self.name.len())
            .map_err(|_| ZipError::TooLarge("an entry name over 65535 bytes".into()))?;
        put_u16(out, FLAG_UTF8);
        put_u16(out, self.method);
        put_u16(out, 0); // time 00:00:00
        put_u16(out, DOS_DATE_1980_01_01);
        put_u32(out, self.crc32);
        put_u32(out, self.compressed_size);
        put_u32(out, self.size);
        put_u16(out, name_len);
        Ok(())
    }
}

fn deflate(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = DeflateEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(data)?;
    encoder.finish()
}

/// The Unix file type and mode in the high half, as Info-ZIP writes them.
fn external_attributes(entry: &ZipEntry) -> u32 {
    let permissions = entry.mode & 0o7777;
    match entry.kind {
        EntryKind::File => (UNIX_REGULAR_FILE | permissions) << 16,
        EntryKind::Directory => ((UNIX_DIRECTORY | permissions) << 16) | DOS_DIRECTORY_ATTRIBUTE,
        EntryKind::Symlink => (UNIX_SYMLINK | 0o777) << 16,
    }
}

fn u32_field(value: u64, what: &str) -> Result<u32, ZipError> {
    u32::try_from(value).map_err(|_| ZipError::TooLarge(format!("{what} is over 4 GiB")))
}

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Lists the entries of the archive `bytes`, from its central directory.
pub fn read_entries(bytes: &[u8]) -> Result<Vec<EntryInfo>, ZipError> {
    let end_at = find_end_of_central_directory(bytes)?;
    let end = Fields::at(bytes, end_at, END_OF_CENTRAL_DIRECTORY_BYTES)
        .ok_or(ZipError::NotAZip("cut short"))?;
    let (this_disk, directory_disk) = (end.u16(4), end.u16(6));
    let (on_this_disk, count) = (end.u16(8), end.u16(10));
    let (size, offset) = (end.u32(12), end.u32(16));
    if this_disk != 0 || directory_disk != 0 || on_this_disk != count {
        return Err(ZipError::Unsupported("split across several disks".into()));
    }
    if count == u16::MAX || size == u32::MAX || offset == u32::MAX {
        return Err(ZipError::Unsupported("Zip64".into()));
    }
    let mut at = offset as usize;
    if at.checked_add(size as usize).is_none_or(|e| e > end_at) {
        return Err(ZipError::Corrupt(
            "the central directory lies outside the file".into(),
        ));
    }
    let mut entries = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let header = Fields::at(bytes, at, CENTRAL_HEADER_BYTES)
            .filter(|h| h.u32(0) == CENTRAL_HEADER_SIGNATURE)
            .ok_or_else(|| ZipError::Corrupt(format!("no central directory header at {at}")))?;
        let name_len = usize::from(header.u16(28));
        let extra_len = usize::from(header.u16(30));
        let comment_len = usize::from(header.u16(32));
        let name_at = at + CENTRAL_HEADER_BYTES;
        let name = bytes
            .get(name_at..name_at + name_len)
            .ok_or(ZipError::NotAZip("cut short"))?;
        let name = String::from_utf8_lossy(name).into_owned();
        let (compressed_size, size) = (header.u32(20), header.u32(24));
        let local_offset = header.u32(42);
        if [compressed_size, size, local_offset].contains(&u32::MAX) {
            return Err(ZipError::Unsupported(format!("Zip64 entry {name}")));
        }
        let made_on_unix = header.u16(4) >> 8 == 3;
        let external = header.u32(38);
        let (kind, mode) = entry_kind(&name, made_on_unix, external);
        entries.push(EntryInfo {
            name,
            kind,
            mode,
            size: u64::from(size),
            method: header.u16(10),
            flags: header.u16(8),
            crc32: header.u32(16),
            compressed_size: u64::from(compressed_size),
            local_header_offset: local_offset as usize,
        });
        at = name_at + name_len + extra_len + comment_len;
    }
    Ok(entries)
}

/// The kind and mode an entry's external attributes give.
fn entry_kind(name: &str, made_on_unix: bool, external: u32) -> (EntryKind, Option<u32>) {
    let unix = external >> 16;
    let named_as_dir = name.ends_with('/');
    if made_on_unix && unix != 0 {
        let kind = match unix & UNIX_FILE_TYPE_MASK {
            UNIX_DIRECTORY => EntryKind::Directory,
            UNIX_SYMLINK => EntryKind::Symlink,
            _ if named_as_dir => EntryKind::Directory,
            _ => EntryKind::File,
        };
        return (kind, Some(unix & 0o7777));
    }
    let is_dir = named_as_dir || external & DOS_DIRECTORY_ATTRIBUTE != 0;
    let kind = if is_dir {
        EntryKind::Directory
    } else {
        EntryKind::File
    };
    (kind, None)
}

/// The extracted data of `entry` (file contents or link target), its size
/// and CRC-32 checked.
pub fn read_contents(bytes: &[u8], entry: &EntryInfo) -> Result<Vec<u8>, ZipError> {
    let name = &entry.name;
    if entry.flags & FLAG_ENCRYPTED != 0 {
        return Err(ZipError::Unsupported(format!("{name} is encrypted")));
    }
    let at = entry.local_header_offset;
    let local = Fields::at(bytes, at, LOCAL_HEADER_BYTES)
        .filter(|h| h.u32(0) == LOCAL_HEADER_SIGNATURE)
        .ok_or_else(|| ZipError::Corrupt(format!("no local header for {name}")))?;
    let data_at = at + LOCAL_HEADER_BYTES + usize::from(local.u16(26)) + usize::from(local.u16(28));
    let stored = usize::try_from(entry.compressed_size)
        .ok()
        .and_then(|len| bytes.get(data_at..data_at.checked_add(len)?))
        .ok_or_else(|| ZipError::Corrupt(format!("the data of {name} is cut short")))?;
    // One byte more than announced is read, so an entry that inflates past
    // its declared size is caught without inflating all of it.
    let limit = entry.size + 1;
    let mut data = Vec::with_capacity(usize::try_from(entry.size).unwrap_or(0));
    match entry.method {
        METHOD_STORED => data.extend_from_slice(stored),
        METHOD_DEFLATE => {
            DeflateDecoder::new(stored)
                .take(limit)
                .read_to_end(&mut data)
                .map_err(|e| ZipError::Corrupt(format!("{name}: {e}")))?;
        }
        other => {
            return Err(ZipError::Unsupported(format!(
                "{name} uses compression method {other} (only stored and deflate are read)"
            )));
        }
    }
    if data.len() as u64 != entry.size {
        return Err(ZipError::Corrupt(format!(
            "{name} holds {} bytes, its header says {}",
            data.len(),
            entry.size
        )));
    }
    let mut crc = flate2::Crc::new();
    crc.update(&data);
    if crc.sum() != entry.crc32 {
        return Err(ZipError::Corrupt(format!("{name} fails its CRC-32 check")));
    }
    Ok(data)
}

/// The offset of the end-of-central-directory record: the last signature
/// within reach of the end (a comment may follow the record).
fn find_end_of_central_directory(bytes: &[u8]) -> Result<usize, ZipError> {
    let last = bytes
        .len()
        .checked_sub(END_OF_CENTRAL_DIRECTORY_BYTES)
        .ok_or(ZipError::NotAZip("too short"))?;
    let first = last.saturating_sub(MAX_COMMENT_BYTES);
    let signature = END_OF_CENTRAL_DIRECTORY_SIGNATURE.to_le_bytes();
    (first..=last)
        .rev()
        .find(|&at| bytes[at..at + 4] == signature)
        .ok_or(ZipError::NotAZip("no end of central directory record"))
}

/// Little-endian fields of a fixed-size record.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn at(bytes: &'a [u8], at: usize, len: usize) -> Option<Self> {
        bytes.get(at..at.checked_add(len)?).map(Fields)
    }

    fn u16(&self, at: usize) -> u16 {
        u16::from_le_bytes([self.0[at], self.0[at + 1]])
    }

    fn u32(&self, at: usize) -> u32 {
        u32::from_le_bytes([self.0[at], self.0[at + 1], self.0[at + 2], self.0[at + 3]])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries() -> Vec<ZipEntry> {
        let entry = |name: &str, kind, mode, data: &[u8]| ZipEntry {
            name: name.to_owned(),
            kind,
            mode,
            data: data.to_vec(),
        };
        vec![
            entry("bin/", EntryKind::Directory, 0o755, b""),
            entry("bin/run", EntryKind::File, 0o755, b"#!/bin/sh\nexec true\n"),
            entry("bin/latest", EntryKind::Symlink, 0o777, b"run"),
            entry("data.txt", EntryKind::File, 0o644, &b"x".repeat(10_000)),
            entry("empty", EntryKind::File, 0o600, b""),
        ]
    }

    fn written(entries: &[ZipEntry]) -> Vec<u8> {
        let mut out = Vec::new();
        let size = write_zip(&mut out, entries).expect("write");
        assert_eq!(size, out.len() as u64);
        out
    }

    #[test]
    fn written_entries_read_back_with_kinds_modes_and_contents() {
        let zip = written(&entries());
        let read = read_entries(&zip).expect("entries");
        assert_eq!(read.len(), 5);
        for (info, entry) in read.iter().zip(entries()) {
            assert_eq!(info.name, entry.name);
            assert_eq!(info.kind, entry.kind, "{}", entry.name);
            if entry.kind != EntryKind::Symlink {
                assert_eq!(info.mode, Some(entry.mode), "{}", entry.name);
            }
            assert_eq!(read_contents(&zip, info).expect("contents"), entry.data);
        }
        assert!(
            zip.len() < 1_000,
            "the 10 kB file was deflated: {}",
            zip.len()
        );
        assert_eq!(
            written(&entries()),
            zip,
            "the same input gives the same bytes"
        );
    }

    #[test]
    fn damaged_and_foreign_archives_are_refused() {
        assert!(matches!(
            read_entries(b"not a zip at all, just text"),
            Err(ZipError::NotAZip(_))
        ));
        assert!(matches!(read_entries(b""), Err(ZipError::NotAZip(_))));
        let zip = written(&entries());
        let mut flipped = zip.clone();
        let data = read_entries(&zip).expect("entries")[3].clone();
        // A byte inside data.txt's deflate stream.
        flipped[data.local_header_offset + LOCAL_HEADER_BYTES + data.name.len() + 2] ^= 0xff;
        let e = read_contents(&flipped, &data).expect_err("damaged data");
        assert!(matches!(e, ZipError::Corrupt(_)), "{e}");
        let cut = &zip[..zip.len() / 2];
        assert!(read_entries(cut).is_err());
        let mut bzip2 = data.clone();
        bzip2.method = 12;
        assert!(matches!(
            read_contents(&zip, &bzip2),
            Err(ZipError::Unsupported(_))
        ));
    }
}
