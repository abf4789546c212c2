//! Reading an EPCIS document as a stream: its context, header and events one at a time.
