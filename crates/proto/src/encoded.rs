//! Events sent as the protobuf bytes a client already holds. A `lotline.v1.Event` inside a
//! `RecordBatchRequest` is a length-delimited field, as `bytes` are, so [`EncodedBatch`] is a
//! `RecordBatchRequest` on the wire: a client with each event's canonical bytes (an importer
//! that encoded them once) sends them as they are, instead of decoding them into a message only
//! to have it encoded again. The server reads an ordinary `RecordBatchRequest`.

use tonic::codegen::{Body, Bytes, StdError, http};

use crate::v1;

/// The service and method [`record_stream`] calls, and its path (which the server reads as
/// encoded batches too).
const SERVICE: &str = "lotline.v1.EventService";
const METHOD: &str = "RecordStream";
pub const PATH: &str = "/lotline.v1.EventService/RecordStream";

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
    let path = http::uri::PathAndQuery::from_static(PATH);
    let mut request = batches.into_streaming_request();
    request
        .extensions_mut()
        .insert(tonic::GrpcMethod::new(SERVICE, METHOD));
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

    /// The path [`record_stream`] calls is written by hand: the service must have that method,
    /// streaming `RecordBatchRequest`s both ways as the encoded batches and answers are.
    #[test]
    fn the_path_called_is_the_streaming_record_method() {
        use prost_types::FileDescriptorSet;
        let set = FileDescriptorSet::decode(crate::FILE_DESCRIPTOR_SET).expect("descriptors");
        let (package, service) = SERVICE.rsplit_once('.').expect("package.Service");
        assert_eq!(PATH, format!("/{SERVICE}/{METHOD}"));
        let method = set
            .file
            .iter()
            .filter(|f| f.package() == package)
            .flat_map(|f| &f.service)
            .filter(|s| s.name() == service)
            .flat_map(|s| &s.method)
            .find(|m| m.name() == METHOD)
            .expect("the service has the method");
        assert_eq!(method.input_type(), ".lotline.v1.RecordBatchRequest");
        assert_eq!(method.output_type(), ".lotline.v1.RecordBatchResponse");
        assert!(method.client_streaming() && method.server_streaming());
    }
}
