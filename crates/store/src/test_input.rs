//! Submissions built from wire events, for the store's own tests.

use lotline_domain::validate;
use lotline_proto::convert::event_from_wire;
use lotline_proto::v1;
use prost::Message;

use crate::Submission;

/// A wire event as intake would submit it.
pub(crate) fn submission(wire: &v1::Event, source: &str) -> Submission {
    let event = event_from_wire(wire).and_then(|e| validate(&e).map(|()| e));
    let mut submission = Submission::new(event, wire.encode_to_vec(), source);
    submission.event_id = wire.event_id.clone();
    submission.org = wire.org.clone();
    submission
}
