//! Kafka's framing: every request and response is a 4-byte big-endian size
//! followed by that many bytes. The size is checked against the configured
//! maximum before a byte of the body is read or allocated.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::error::KafkaError;

/// Reads one request frame's body, or `None` when the client closed the
/// connection between frames.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max_bytes: usize,
) -> Result<Option<Bytes>, KafkaError> {
    let mut size = [0u8; 4];
    match reader.read_exact(&mut size).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(KafkaError::Io(e)),
    }
    let size = i32::from_be_bytes(size);
    let size = usize::try_from(size).map_err(|_| KafkaError::BadFrame {
        reason: format!("negative frame size {size}"),
    })?;
    if size > max_bytes {
        return Err(KafkaError::BadFrame {
            reason: format!("frame of {size} bytes exceeds the maximum of {max_bytes}"),
        });
    }
    // Read into the buffer's spare capacity: no pass zeroing a body that
    // is about to be overwritten (a produce's is a megabyte). `take` keeps
    // each read inside this frame.
    let mut body = BytesMut::with_capacity(size);
    while body.len() < size {
        let remaining = (size - body.len()) as u64;
        let read = (&mut *reader)
            .take(remaining)
            .read_buf(&mut body)
            .await
            .map_err(KafkaError::Io)?;
        if read == 0 {
            return Err(KafkaError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
    }
    Ok(Some(body.freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sizes_are_checked_before_reading() {
        let mut oversized: &[u8] = &[0x7f, 0xff, 0xff, 0xff];
        assert!(matches!(
            read_frame(&mut oversized, 1024).await,
            Err(KafkaError::BadFrame { .. })
        ));
        let mut negative: &[u8] = &[0xff, 0xff, 0xff, 0xfe];
        assert!(read_frame(&mut negative, 1024).await.is_err());
        let mut short: &[u8] = &[0, 0, 0, 9, 1, 2];
        assert!(read_frame(&mut short, 1024).await.is_err());
        let mut closed: &[u8] = &[];
        assert!(read_frame(&mut closed, 1024).await.unwrap().is_none());
        let mut whole: &[u8] = &[0, 0, 0, 2, 7, 8];
        assert_eq!(
            read_frame(&mut whole, 1024).await.unwrap().unwrap(),
            Bytes::from_static(&[7, 8])
        );
        let mut back_to_back: &[u8] = &[0, 0, 0, 3, 1, 2, 3, 0, 0, 0, 1, 9];
        assert_eq!(
            read_frame(&mut back_to_back, 1024).await.unwrap().unwrap(),
            Bytes::from_static(&[1, 2, 3])
        );
        assert_eq!(
            read_frame(&mut back_to_back, 1024).await.unwrap().unwrap(),
            Bytes::from_static(&[9])
        );
        assert!(read_frame(&mut back_to_back, 1024).await.unwrap().is_none());
    }
}
