//! A ZIP archive written front to back into any `Write` (no seeking), so a package streams
//! straight into sealed storage: deflated entries, sizes and CRC-32 in data descriptors after
//! each entry, ZIP64 fields throughout (no 4 GiB limits), UTF-8 names. Only what the packages
//! need: files, no directories, no comments.

use std::io::{self, Write};

use chrono::{DateTime, Datelike, Timelike, Utc};
use flate2::write::DeflateEncoder;
use flate2::Compression;
use sha2::{Digest, Sha256};

const VERSION: u16 = 45; // ZIP64
const FLAGS: u16 = 0x0008 | 0x0800; // sizes in a data descriptor; UTF-8 names
const DEFLATE: u16 = 8;

/// What one finished entry holds (for the manifest).
#[derive(Debug, Clone)]
pub struct EntryInfo {
    pub name: String,
    pub size: u64,
    /// SHA-256 of the entry's uncompressed bytes, hex.
    pub sha256: String,
}

struct Entry {
    name: String,
    crc: u32,
    compressed: u64,
    size: u64,
    offset: u64,
}

struct Current {
    name: String,
    offset: u64,
    data_start: u64,
    encoder: DeflateEncoder<Vec<u8>>,
    crc: crc32fast::Hasher,
    sha: Sha256,
    size: u64,
}

pub struct ZipStream<W: Write> {
    out: W,
    written: u64,
    entries: Vec<Entry>,
    current: Option<Current>,
    time: u16,
    date: u16,
}

impl<W: Write> ZipStream<W> {
    pub fn new(out: W, at: DateTime<Utc>) -> ZipStream<W> {
        let year = u16::try_from(at.year().clamp(1980, 2107) - 1980).unwrap_or(0);
        ZipStream {
            out,
            written: 0,
            entries: vec![],
            current: None,
            // MS-DOS time and date, as every reader shows them.
            time: (at.hour() as u16) << 11 | (at.minute() as u16) << 5 | (at.second() as u16 / 2),
            date: year << 9 | (at.month() as u16) << 5 | at.day() as u16,
        }
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Starts an entry (ending the one before).
    pub fn start(&mut self, name: &str) -> io::Result<()> {
        if self.current.is_some() {
            self.end()?;
        }
        let offset = self.written;
        let mut h = Vec::with_capacity(30 + name.len() + 20);
        h.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        h.extend_from_slice(&VERSION.to_le_bytes());
        h.extend_from_slice(&FLAGS.to_le_bytes());
        h.extend_from_slice(&DEFLATE.to_le_bytes());
        h.extend_from_slice(&self.time.to_le_bytes());
        h.extend_from_slice(&self.date.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes()); // CRC: in the descriptor
        h.extend_from_slice(&u32::MAX.to_le_bytes()); // sizes: in the ZIP64 fields
        h.extend_from_slice(&u32::MAX.to_le_bytes());
        h.extend_from_slice(&name_len(name)?.to_le_bytes());
        h.extend_from_slice(&20u16.to_le_bytes());
        h.extend_from_slice(name.as_bytes());
        h.extend_from_slice(&1u16.to_le_bytes()); // ZIP64 extended information
        h.extend_from_slice(&16u16.to_le_bytes());
        h.extend_from_slice(&0u64.to_le_bytes());
        h.extend_from_slice(&0u64.to_le_bytes());
        self.put(&h)?;
        self.current = Some(Current {
            name: name.to_owned(),
            offset,
            data_start: self.written,
            encoder: DeflateEncoder::new(Vec::with_capacity(64 * 1024), Compression::fast()),
            crc: crc32fast::Hasher::new(),
            sha: Sha256::new(),
            size: 0,
        });
        Ok(())
    }

    /// Ends the current entry: its compressed rest and its data descriptor.
    pub fn end(&mut self) -> io::Result<EntryInfo> {
        let cur = self
            .current
            .take()
            .ok_or_else(|| io::Error::other("no ZIP entry is open"))?;
        let rest = cur.encoder.finish()?;
        self.put(&rest)?;
        let compressed = self.written - cur.data_start;
        let crc = cur.crc.finalize();
        let mut d = Vec::with_capacity(24);
        d.extend_from_slice(&0x0807_4b50u32.to_le_bytes());
        d.extend_from_slice(&crc.to_le_bytes());
        d.extend_from_slice(&compressed.to_le_bytes());
        d.extend_from_slice(&cur.size.to_le_bytes());
        self.put(&d)?;
        let sha256 = cur
            .sha
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        self.entries.push(Entry {
            name: cur.name.clone(),
            crc,
            compressed,
            size: cur.size,
            offset: cur.offset,
        });
        Ok(EntryInfo {
            name: cur.name,
            size: cur.size,
            sha256,
        })
    }

    /// Writes the central directory and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        if self.current.is_some() {
            self.end()?;
        }
        let cd_start = self.written;
        let entries = std::mem::take(&mut self.entries);
        for e in &entries {
            let mut c = Vec::with_capacity(46 + e.name.len() + 28);
            c.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
            c.extend_from_slice(&VERSION.to_le_bytes()); // made by
            c.extend_from_slice(&VERSION.to_le_bytes()); // needed
            c.extend_from_slice(&FLAGS.to_le_bytes());
            c.extend_from_slice(&DEFLATE.to_le_bytes());
            c.extend_from_slice(&self.time.to_le_bytes());
            c.extend_from_slice(&self.date.to_le_bytes());
            c.extend_from_slice(&e.crc.to_le_bytes());
            c.extend_from_slice(&u32::MAX.to_le_bytes());
            c.extend_from_slice(&u32::MAX.to_le_bytes());
            c.extend_from_slice(&name_len(&e.name)?.to_le_bytes());
            c.extend_from_slice(&28u16.to_le_bytes()); // extra
            c.extend_from_slice(&0u16.to_le_bytes()); // comment
            c.extend_from_slice(&0u16.to_le_bytes()); // disk
            c.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
            c.extend_from_slice(&0u32.to_le_bytes()); // external attributes
            c.extend_from_slice(&u32::MAX.to_le_bytes()); // offset: in the ZIP64 field
            c.extend_from_slice(e.name.as_bytes());
            c.extend_from_slice(&1u16.to_le_bytes());
            c.extend_from_slice(&24u16.to_le_bytes());
            c.extend_from_slice(&e.size.to_le_bytes());
            c.extend_from_slice(&e.compressed.to_le_bytes());
            c.extend_from_slice(&e.offset.to_le_bytes());
            self.put(&c)?;
        }
        let cd_size = self.written - cd_start;
        let n = entries.len() as u64;
        let eocd64 = self.written;
        let mut t = Vec::with_capacity(56 + 20 + 22);
        // ZIP64 end of central directory record.
        t.extend_from_slice(&0x0606_4b50u32.to_le_bytes());
        t.extend_from_slice(&44u64.to_le_bytes());
        t.extend_from_slice(&VERSION.to_le_bytes());
        t.extend_from_slice(&VERSION.to_le_bytes());
        t.extend_from_slice(&0u32.to_le_bytes());
        t.extend_from_slice(&0u32.to_le_bytes());
        t.extend_from_slice(&n.to_le_bytes());
        t.extend_from_slice(&n.to_le_bytes());
        t.extend_from_slice(&cd_size.to_le_bytes());
        t.extend_from_slice(&cd_start.to_le_bytes());
        // Its locator.
        t.extend_from_slice(&0x0706_4b50u32.to_le_bytes());
        t.extend_from_slice(&0u32.to_le_bytes());
        t.extend_from_slice(&eocd64.to_le_bytes());
        t.extend_from_slice(&1u32.to_le_bytes());
        // The classic end record, with the values that fit (readers take the rest from above).
        let n16 = u16::try_from(n).unwrap_or(u16::MAX);
        t.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        t.extend_from_slice(&0u16.to_le_bytes());
        t.extend_from_slice(&0u16.to_le_bytes());
        t.extend_from_slice(&n16.to_le_bytes());
        t.extend_from_slice(&n16.to_le_bytes());
        t.extend_from_slice(&u32::try_from(cd_size).unwrap_or(u32::MAX).to_le_bytes());
        t.extend_from_slice(&u32::try_from(cd_start).unwrap_or(u32::MAX).to_le_bytes());
        t.extend_from_slice(&0u16.to_le_bytes());
        self.put(&t)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

fn name_len(name: &str) -> io::Result<u16> {
    u16::try_from(name.len()).map_err(|_| io::Error::other("ZIP entry name too long"))
}

/// Writes into the open entry; compressed output goes on to the archive as it is made.
impl<W: Write> Write for ZipStream<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let cur = self
            .current
            .as_mut()
            .ok_or_else(|| io::Error::other("no ZIP entry is open"))?;
        cur.encoder.write_all(data)?;
        cur.crc.update(data);
        cur.sha.update(data);
        cur.size += data.len() as u64;
        if cur.encoder.get_ref().len() >= 32 * 1024 {
            let out = std::mem::take(cur.encoder.get_mut());
            self.put(&out)?;
            if let Some(cur) = self.current.as_mut() {
                // Give the buffer back, emptied, so it is not allocated again.
                let mut out = out;
                out.clear();
                *cur.encoder.get_mut() = out;
            }
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_checksums_are_of_the_plain_bytes() {
        let mut z = ZipStream::new(Vec::new(), Utc::now());
        z.start("a.txt").expect("start");
        z.write_all(b"hello").expect("write");
        let info = z.end().expect("end");
        assert_eq!(info.size, 5);
        assert_eq!(
            info.sha256,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        let bytes = z.finish().expect("finish");
        assert_eq!(&bytes[..4], &[0x50, 0x4b, 0x03, 0x04]);
        // Writing with no entry open is refused.
        let mut z = ZipStream::new(Vec::new(), Utc::now());
        assert!(z.write_all(b"x").is_err());
    }
}
