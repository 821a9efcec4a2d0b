//! gzip members (RFC 1952): a header, raw deflate from `miniz_oxide`, the CRC-32 and the length.
//!
//! Owns the member format and the CRC-32 (a 1 KiB table built at compile time), and the
//! compression level. Knows nothing about HTTP or what is compressed: the poller compresses each
//! snapshot's text once ([`member`]), and a scrape appends the process metrics as a second
//! member, which every gzip reader (Prometheus's Go reader among them) takes as the
//! concatenation of the two. That second member is [`stored`]: deflate's uncompressed blocks,
//! which need no compressor (whose state takes more stack than a connection thread has, and
//! which would save only a few hundred bytes). `miniz_oxide` is named only here.

/// Deflate level: 1, the fastest. Exposition text repeats itself so much that level 1 already
/// shrinks it about tenfold; higher levels cost several times the time for a few per cent.
const LEVEL: u8 = 1;

/// `data` as one complete gzip member.
pub fn member(data: &[u8]) -> Vec<u8> {
    let deflated = miniz_oxide::deflate::compress_to_vec(data, LEVEL);
    let mut out = Vec::with_capacity(HEADER.len() + deflated.len() + 8);
    out.extend_from_slice(&HEADER);
    out.extend_from_slice(&deflated);
    out.extend_from_slice(&crc32(data).to_le_bytes());
    // ISIZE is the length modulo 2^32.
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

/// `data` as one gzip member of stored (uncompressed) deflate blocks: 5 bytes more per 64 KiB,
/// and no compressor.
pub fn stored(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER.len() + data.len() + 5 * (data.len() / 65535 + 1) + 8);
    out.extend_from_slice(&HEADER);
    let mut blocks = data.chunks(65535).peekable();
    if blocks.peek().is_none() {
        // An empty final stored block.
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(block) = blocks.next() {
        // BFINAL on the last block, BTYPE 00 (stored), then LEN and its one's complement.
        out.push(u8::from(blocks.peek().is_none()));
        let len = block.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

/// ID1 ID2, CM = 8 (deflate), no flags, no modification time, XFL = 4 (fastest), OS = 3 (Unix).
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 3];

/// The CRC-32 of gzip (ISO 3309, reflected, polynomial 0xEDB88320).
pub fn crc32(data: &[u8]) -> u32 {
    !data.iter().fold(!0u32, |crc, &byte| {
        TABLE[((crc ^ u32::from(byte)) & 0xff) as usize] ^ (crc >> 8)
    })
}

const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut n = 0;
    while n < 256 {
        let mut c = n as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[n] = c;
        n += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_check_values() {
        fn check(data: &[u8], expected: u32) {
            assert_eq!(crc32(data), expected, "{data:?}");
        }
        check(b"", 0);
        check(b"123456789", 0xCBF4_3926);
        check(b"The quick brown fox jumps over the lazy dog", 0x414F_A339);
    }

    /// Checks that `gz` is one gzip member holding `data`.
    fn check_member(gz: &[u8], data: &[u8]) {
        let (deflated, trailer) = gz[HEADER.len()..].split_at(gz.len() - HEADER.len() - 8);
        assert_eq!(gz[..HEADER.len()], HEADER);
        assert_eq!(
            miniz_oxide::inflate::decompress_to_vec(deflated).unwrap(),
            data
        );
        assert_eq!(trailer[..4], crc32(data).to_le_bytes());
        assert_eq!(trailer[4..], (data.len() as u32).to_le_bytes());
    }

    #[test]
    fn members_hold_their_input() {
        let data = b"# TYPE a gauge\na 1\n".repeat(5000);
        let gz = member(&data);
        assert!(gz.len() < data.len() / 10, "{}", gz.len());
        check_member(&gz, &data);
        for len in [0, 1, 700, 65535, 65536, 95000] {
            let gz = stored(&data[..len]);
            assert_eq!(gz.len(), 18 + len + 5 * len.div_ceil(65535).max(1), "{len}");
            check_member(&gz, &data[..len]);
        }
    }
}
