"""FIT-Connect: the receiver side of the Submission API as a source, and a simulator of FIT-Connect."""
