//! The gzip writer of the layers berth makes (commit, import, build steps):
//! a standard gzip stream whose deflate data is stored, not compressed, in
//! the parts that look incompressible. Layers often hold data that is
//! already compressed (archives, images, packed binaries); deflating it at
//! the fastest level costs ~7 ms per MB here and saves nothing, while storing
//! it costs a copy. Any gzip reader reads the result.
//!
//! Written by hand because no gzip crate switches between deflating and
//! storing per block: this drives flate2's raw deflate (`Compress`) and puts
//! the stored blocks (RFC 1951 §3.2.4), gzip header and trailer (RFC 1952)
//! around it.

use std::io::{self, Write};

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// Input is judged and written in blocks of this size.
const BLOCK: usize = 256 * 1024;
/// The most a stored deflate block holds.
const STORED_MAX: usize = 65_535;
/// Bytes of each block whose distribution is measured…
const SAMPLE: usize = 4096;
/// …taken at this many places spread over the block.
const SAMPLES: usize = 4;
/// Above this many bits of entropy per byte a block is stored: compressed
/// and random data measure ~7.9 and more, binaries ~6, text ~4.5.
const STORE_ABOVE_BITS: f64 = 7.5;

/// A gzip writer that stores incompressible blocks; [`GzWriter::finish`]
/// writes the trailer and returns the inner writer.
pub struct GzWriter<W: Write> {
    out: W,
    deflate: Compress,
    /// Whether `deflate` has been given input since it was last reset.
    deflating: bool,
    crc: Crc,
    pending: Vec<u8>,
    scratch: Vec<u8>,
    header_written: bool,
}

impl<W: Write> GzWriter<W> {
    pub fn new(out: W, level: Compression) -> Self {
        GzWriter {
            out,
            deflate: Compress::new(level, false),
            deflating: false,
            crc: Crc::new(),
            pending: Vec::with_capacity(BLOCK),
            scratch: vec![0; 64 * 1024],
            header_written: false,
        }
    }

    /// Writes what is pending, the end of the deflate stream and the gzip
    /// trailer (CRC-32 and length of the input); returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.header()?;
        let rest = std::mem::take(&mut self.pending);
        self.block(&rest)?;
        // A fresh compressor ends the stream with an empty final block.
        self.run(&[], FlushCompress::Finish)?;
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&self.crc.sum().to_le_bytes());
        trailer[4..].copy_from_slice(&self.crc.amount().to_le_bytes());
        self.out.write_all(&trailer)?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn header(&mut self) -> io::Result<()> {
        if !self.header_written {
            // Magic, deflate, no flags, no mtime, no extra flags, OS unknown.
            self.out
                .write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255])?;
            self.header_written = true;
        }
        Ok(())
    }

    /// Writes one block of input, stored or deflated.
    fn block(&mut self, data: &[u8]) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        if !incompressible(data) {
            self.deflating = true;
            return self.run(data, FlushCompress::None);
        }
        if self.deflating {
            // End what was deflated on a byte boundary, and forget its
            // window: the stored bytes are not in the compressor's history.
            self.run(&[], FlushCompress::Sync)?;
            self.deflate.reset();
            self.deflating = false;
        }
        for chunk in data.chunks(STORED_MAX) {
            let len = chunk.len() as u16;
            let mut head = [0u8; 5];
            // BFINAL 0, BTYPE 00 (stored), padded to the byte; LEN, NLEN.
            head[1..3].copy_from_slice(&len.to_le_bytes());
            head[3..].copy_from_slice(&(!len).to_le_bytes());
            self.out.write_all(&head)?;
            self.out.write_all(chunk)?;
        }
        Ok(())
    }

    /// Feeds `input` to the compressor with `flush`, writing what it makes.
    fn run(&mut self, mut input: &[u8], flush: FlushCompress) -> io::Result<()> {
        loop {
            let (in_before, out_before) = (self.deflate.total_in(), self.deflate.total_out());
            let status = self
                .deflate
                .compress(input, &mut self.scratch, flush)
                .map_err(io::Error::other)?;
            let used = (self.deflate.total_in() - in_before) as usize;
            let made = (self.deflate.total_out() - out_before) as usize;
            input = &input[used..];
            self.out.write_all(&self.scratch[..made])?;
            let drained = input.is_empty() && made < self.scratch.len();
            match (status, flush) {
                (Status::StreamEnd, _) => return Ok(()),
                (_, FlushCompress::Finish) if used == 0 && made == 0 => {
                    return Err(io::Error::other("deflate made no progress finishing"));
                }
                (_, FlushCompress::Finish) => {}
                _ if drained => return Ok(()),
                _ => {}
            }
        }
    }
}

impl<W: Write> Write for GzWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.header()?;
        let take = buf.len().min(BLOCK - self.pending.len());
        self.crc.update(&buf[..take]);
        self.pending.extend_from_slice(&buf[..take]);
        if self.pending.len() == BLOCK {
            let full = std::mem::replace(&mut self.pending, Vec::with_capacity(BLOCK));
            self.block(&full)?;
        }
        Ok(take)
    }

    /// Blocks wait for their full size before they are judged; this only
    /// flushes the inner writer.
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Whether `data` looks incompressible: the byte entropy of a few samples
/// spread over it.
fn incompressible(data: &[u8]) -> bool {
    let mut counts = [0u32; 256];
    let mut total = 0usize;
    if data.len() <= SAMPLE * SAMPLES {
        data.iter().for_each(|b| counts[*b as usize] += 1);
        total = data.len();
    } else {
        let stride = (data.len() - SAMPLE) / (SAMPLES - 1);
        for i in 0..SAMPLES {
            let part = &data[i * stride..i * stride + SAMPLE];
            part.iter().for_each(|b| counts[*b as usize] += 1);
            total += SAMPLE;
        }
    }
    // Too little to measure: deflate it (and a few hundred bytes of random
    // data cannot reach 7.5 bits with only that many samples).
    if total < 1024 {
        return false;
    }
    let n = total as f64;
    let bits: f64 = counts
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = *c as f64 / n;
            -p * p.log2()
        })
        .sum();
    bits > STORE_ABOVE_BITS
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// Bytes no compressor shrinks (xorshift; no rand in the engine).
    fn noise(len: usize, mut seed: u64) -> Vec<u8> {
        (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed >> 24) as u8
            })
            .collect()
    }

    fn text(len: usize) -> Vec<u8> {
        b"the quick brown fox jumps over the lazy dog; "
            .iter()
            .cycle()
            .take(len)
            .copied()
            .collect()
    }

    fn gzip(data: &[u8], write_size: usize) -> Vec<u8> {
        let mut w = GzWriter::new(Vec::new(), Compression::fast());
        for chunk in data.chunks(write_size.max(1)) {
            w.write_all(chunk).unwrap();
        }
        w.finish().unwrap()
    }

    fn gunzip(gz: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut out)
            .expect("a valid gzip stream with a matching CRC and length");
        out
    }

    #[test]
    fn mixed_blocks_roundtrip() {
        // Text, noise, text again, noise at the end, with block edges
        // falling inside each part and odd write sizes.
        let mut data = text(300_000);
        data.extend(noise(700_000, 7));
        data.extend(text(100_001));
        data.extend(noise(65_536 * 2 + 3, 9));
        for write_size in [1 << 20, 8191, 100_000] {
            let gz = gzip(&data, write_size);
            assert_eq!(gunzip(&gz), data, "write size {write_size}");
        }
    }

    #[test]
    fn noise_is_stored_and_text_deflated() {
        let data = noise(1 << 20, 3);
        let gz = gzip(&data, 1 << 16);
        // Stored: 5 bytes per 64 KiB block, header and trailer.
        assert!(gz.len() < data.len() + data.len() / 1000, "{}", gz.len());
        assert!(gz.len() >= data.len());
        let data = text(1 << 20);
        let gz = gzip(&data, 1 << 16);
        assert!(gz.len() < data.len() / 50, "{}", gz.len());
        assert_eq!(gunzip(&gz), data);
    }

    #[test]
    fn empty_and_tiny_inputs() {
        for data in [Vec::new(), b"x".to_vec(), noise(10, 1), noise(5000, 2)] {
            let gz = gzip(&data, 4096);
            assert_eq!(gunzip(&gz), data, "{} bytes", data.len());
        }
    }

    #[test]
    fn entropy_tells_noise_from_binaries_and_text() {
        assert!(incompressible(&noise(BLOCK, 5)));
        assert!(!incompressible(&text(BLOCK)));
        assert!(!incompressible(&vec![0u8; BLOCK]));
        // Half the byte values, evenly: 7 bits, deflate still gains.
        let half: Vec<u8> = noise(BLOCK, 6).iter().map(|b| b & 0x7f).collect();
        assert!(!incompressible(&half));
    }
}
