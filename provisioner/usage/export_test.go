package usage

// Remembered is how many volumes the monitor remembers anything of.
func (m *Monitor) Remembered() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.overRequest)
}
