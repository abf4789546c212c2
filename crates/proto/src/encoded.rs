//! Events sent as the protobuf bytes a client already holds. A `lotline.v1.Event` inside a
//! `RecordBatchRequest` is a length-delimited field, as `bytes` are, so [`EncodedBatch`] is a
//! `RecordBatchRequest` on the wire: a client with each event's canonical bytes (an importer
//! that encoded them once) sends them as they are, instead of decoding them into a message only
//! to have it encoded again. The server reads an ordinary `RecordBatchRequest`.

use tonic::codegen::{Body, Bytes, StdError, http};

use crate::v1;

/// A `lotline.v1.RecordBatchRequest` whose events are already encoded.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EncodedBatch {
    /// Each one the protobuf bytes of a `lotline.v1.Event`.
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub events: Vec<Vec<u8>>,
}

/// `EventService.RecordStream` with batches of encoded events: answers as the generated
/// client's `record_stream` does.
pub async fn record_stream<T>(
    channel: T,
    max_decoding_message_size: usize,
    batches: impl tonic::IntoStreamingRequest<Message = EncodedBatch>,
) -> Result<tonic::Response<tonic::Streaming<v1::RecordBatchResponse>>, tonic::Status>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<StdError>,
    T::ResponseBody: Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as Body>::Error: Into<StdError> + Send,
{
    let mut grpc =
        tonic::client::Grpc::new(channel).max_decoding_message_size(max_decoding_message_size);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unknown(format!("Service was not ready: {}", e.into())))?;
    let codec = tonic_prost::ProstCodec::<EncodedBatch, v1::RecordBatchResponse>::default();
    let path = http::uri::PathAndQuery::from_static("/lotline.v1.EventService/RecordStream");
    let mut request = batches.into_streaming_request();
    request.extensions_mut().insert(tonic::GrpcMethod::new(
        "lotline.v1.EventService",
        "RecordStream",
    ));
    grpc.streaming(request, path, codec).await
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    #[test]
    fn an_encoded_batch_is_a_record_batch_request_on_the_wire() {
        let events = vec![
            v1::Event {
                event_id: "h-1".into(),
                org: "coop".into(),
                chain: "cocoa".into(),
                ..Default::default()
            },
            v1::Event {
                event_id: "h-2".into(),
                org: "coop".into(),
                ..Default::default()
            },
            v1::Event::default(),
        ];
        let encoded = EncodedBatch {
            events: events.iter().map(Message::encode_to_vec).collect(),
        }
        .encode_to_vec();
        let request = v1::RecordBatchRequest {
            events: events.clone(),
        };
        assert_eq!(encoded, request.encode_to_vec());
        let read = v1::RecordBatchRequest::decode(encoded.as_slice()).expect("decodes");
        assert_eq!(read.events, events);
    }
}
