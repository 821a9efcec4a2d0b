//! ELF: what a binary asks of the system to start (an interpreter, shared libraries), read
//! from its program headers, for the tests of the static builds and of the ordinary one.

#[derive(Debug)]
pub struct Elf {
    pub machine: u64,
    /// Has a `PT_INTERP` program header: the kernel starts a dynamic loader first.
    pub interpreter: bool,
    /// Number of `DT_NEEDED` entries: shared libraries to load.
    pub needed: usize,
}

/// Reads the program headers of a little-endian ELF file, 32- or 64-bit.
pub fn read_elf(bytes: &[u8]) -> Result<Elf, String> {
    let field = |offset: u64, len: usize| -> Result<u64, String> {
        let start = usize::try_from(offset).map_err(|_| "offset out of range")?;
        let slice = bytes
            .get(start..start + len)
            .ok_or(format!("truncated at {offset}"))?;
        Ok(slice
            .iter()
            .rev()
            .fold(0, |value, &b| value << 8 | u64::from(b)))
    };
    if bytes.get(..4) != Some(b"\x7fELF") {
        return Err("not an ELF file".into());
    }
    let wide = match bytes[4] {
        1 => false,
        2 => true,
        class => return Err(format!("unknown ELF class {class}")),
    };
    if bytes[5] != 1 {
        return Err("not little-endian".into());
    }
    let word = if wide { 8 } else { 4 };
    let (phoff, phentsize, phnum) = if wide {
        (field(0x20, 8)?, field(0x36, 2)?, field(0x38, 2)?)
    } else {
        (field(0x1c, 4)?, field(0x2a, 2)?, field(0x2c, 2)?)
    };
    let mut elf = Elf {
        machine: field(0x12, 2)?,
        interpreter: false,
        needed: 0,
    };
    for i in 0..phnum {
        let header = phoff + i * phentsize;
        let (offset, size) = if wide {
            (field(header + 8, 8)?, field(header + 32, 8)?)
        } else {
            (field(header + 4, 4)?, field(header + 16, 4)?)
        };
        match field(header, 4)? {
            3 => elf.interpreter = true, // PT_INTERP
            2 => {
                // PT_DYNAMIC: (tag, value) pairs up to DT_NULL.
                for entry in (offset..offset + size).step_by(2 * word) {
                    match field(entry, word)? {
                        0 => break,           // DT_NULL
                        1 => elf.needed += 1, // DT_NEEDED
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Ok(elf)
}
