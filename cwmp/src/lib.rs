//! TR-069 CWMP engine: SOAP codec, session state machine and data-model tree, free of OS specifics.
