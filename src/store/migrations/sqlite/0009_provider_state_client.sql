-- A provider flag names the client credentials that were refused, by a fingerprint (a hash, never the
-- secret), and when a refusal was last reported. During a rolling change of the client secret the
-- processes already on the new secret then ignore the old secret's refusals, instead of pausing on
-- them and lifting and raising the flag in turn with the processes still on the old one; and a flag
-- no live process has reported for a while can be lifted by one whose credentials work.
ALTER TABLE provider_states ADD COLUMN client_fingerprint TEXT;
ALTER TABLE provider_states ADD COLUMN asserted_at_ms INTEGER;
