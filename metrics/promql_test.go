package metrics

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"
)

// A tiny PromQL evaluator for the expression shapes the dashboard uses, over
// two scrapes of counters: rate(x[w]) is (after - before) / w, increase(x[w])
// is after - before, a bare selector is its value in the later scrape. It
// knows sum, min, max and count with or without "by (...)", rate and
// increase, the four arithmetic operators between vectors of identical label
// sets (one-to-one matching, as PromQL does without on/ignoring) or between
// a vector and a number, and the =, !=, =~ and !~ matchers. Anything else
// (histogram_quantile, offset, on, group_left, ...) is an error, so a panel
// the evaluator cannot read fails loudly instead of comparing nonsense.

// promSeries is one series of a scrape; labels include __name__.
type promSeries struct {
	labels map[string]string
	value  float64
}

// scrapeAll gathers every registry as Prometheus would scrape a target,
// adding the target labels job and instance (the instance is the map key).
func scrapeAll(targets map[string]prometheus.Gatherer) ([]promSeries, error) {
	var out []promSeries
	for instance, g := range targets {
		mfs, err := g.Gather()
		if err != nil {
			return nil, fmt.Errorf("scrape %s: %w", instance, err)
		}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				var v float64
				switch {
				case m.Counter != nil:
					v = m.GetCounter().GetValue()
				case m.Gauge != nil:
					v = m.GetGauge().GetValue()
				default:
					continue // histograms: not needed by the panels evaluated here
				}
				l := map[string]string{"__name__": mf.GetName(), "job": "nearcache", "instance": instance}
				for _, lp := range m.GetLabel() {
					l[lp.GetName()] = lp.GetValue()
				}
				out = append(out, promSeries{l, v})
			}
		}
	}
	return out, nil
}

// labelKey is a label set, __name__ excluded, as a comparable string.
func labelKey(l map[string]string) string {
	var parts []string
	for k, v := range l {
		if k != "__name__" {
			parts = append(parts, k+"="+strconv.Quote(v))
		}
	}
	slices.Sort(parts)
	return "{" + strings.Join(parts, ",") + "}"
}

// promEval evaluates expressions between two scrapes window seconds apart.
type promEval struct {
	before, after []promSeries
	window        float64
}

// eval returns the expression's result vector: label set (see labelKey) ->
// value. vars replaces Grafana's template variables ($job, $__rate_interval)
// first.
func (e *promEval) eval(expr string, vars map[string]string) (map[string]float64, error) {
	// Longest names first, so $__rate_interval is not read as $__rate.
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	slices.SortFunc(names, func(a, b string) int { return len(b) - len(a) })
	for _, k := range names {
		expr = strings.ReplaceAll(expr, "$"+k, vars[k])
	}
	if strings.Contains(expr, "$") {
		return nil, fmt.Errorf("unreplaced template variable in %q", expr)
	}
	p := &promParser{src: expr}
	n, err := p.parseExpr(0)
	if err != nil {
		return nil, err
	}
	if p.skipSpace(); p.pos != len(p.src) {
		return nil, fmt.Errorf("unexpected %q at %d in %q", p.src[p.pos:], p.pos, expr)
	}
	v, err := n.eval(e)
	if err != nil {
		return nil, err
	}
	if v.scalar != nil {
		return nil, fmt.Errorf("%q is a number, not a vector", expr)
	}
	out := map[string]float64{}
	for _, s := range v.vec {
		out[labelKey(s.labels)] = s.value
	}
	return out, nil
}

// promValue is a vector or, when scalar is set, a number.
type promValue struct {
	vec    []promSeries
	scalar *float64
}

type promNode interface {
	eval(e *promEval) (promValue, error)
}

type (
	numberNode   float64
	matcher      struct{ name, op, value string }
	selectorNode struct {
		matchers []matcher
		ranged   bool // followed by [range]: only rate and increase take it
	}
	funcNode struct {
		name string
		arg  *selectorNode
	}
	aggNode struct {
		op string
		by []string // nil = no grouping
		x  promNode
	}
	binaryNode struct {
		op   byte
		l, r promNode
	}
)

func (n numberNode) eval(*promEval) (promValue, error) {
	f := float64(n)
	return promValue{scalar: &f}, nil
}

func (m matcher) matches(l map[string]string) (bool, error) {
	v := l[m.name]
	switch m.op {
	case "=":
		return v == m.value, nil
	case "!=":
		return v != m.value, nil
	}
	re, err := regexp.Compile("^(?:" + m.value + ")$") // PromQL anchors regexps
	if err != nil {
		return false, err
	}
	return re.MatchString(v) == (m.op == "=~"), nil
}

func (n *selectorNode) sel(in []promSeries) ([]promSeries, error) {
	var out []promSeries
next:
	for _, s := range in {
		for _, m := range n.matchers {
			ok, err := m.matches(s.labels)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue next
			}
		}
		out = append(out, s)
	}
	return out, nil
}

func (n *selectorNode) eval(e *promEval) (promValue, error) {
	if n.ranged {
		return promValue{}, fmt.Errorf("a range vector outside rate or increase")
	}
	v, err := n.sel(e.after)
	return promValue{vec: v}, err
}

func (n *funcNode) eval(e *promEval) (promValue, error) {
	after, err := n.arg.sel(e.after)
	if err != nil {
		return promValue{}, err
	}
	before, err := n.arg.sel(e.before)
	if err != nil {
		return promValue{}, err
	}
	prev := map[string]float64{}
	for _, s := range before {
		prev[s.labels["__name__"]+labelKey(s.labels)] = s.value
	}
	var out []promSeries
	for _, s := range after {
		p, ok := prev[s.labels["__name__"]+labelKey(s.labels)]
		if !ok {
			continue // Prometheus needs two samples of a series for a rate
		}
		d := s.value - p
		if d < 0 {
			d = s.value // a counter reset
		}
		if n.name == "rate" {
			d /= e.window
		}
		out = append(out, promSeries{withoutName(s.labels), d})
	}
	return promValue{vec: out}, nil
}

func withoutName(l map[string]string) map[string]string {
	out := make(map[string]string, len(l))
	for k, v := range l {
		if k != "__name__" {
			out[k] = v
		}
	}
	return out
}

func (n *aggNode) eval(e *promEval) (promValue, error) {
	x, err := n.x.eval(e)
	if err != nil {
		return promValue{}, err
	}
	if x.scalar != nil {
		return promValue{}, fmt.Errorf("%s over a number", n.op)
	}
	type acc struct {
		labels map[string]string
		v      float64
		n      int
	}
	groups := map[string]*acc{}
	var order []string
	for _, s := range x.vec {
		l := map[string]string{}
		for _, k := range n.by {
			if v, ok := s.labels[k]; ok {
				l[k] = v
			}
		}
		k := labelKey(l)
		a, ok := groups[k]
		if !ok {
			a = &acc{labels: l, v: s.value}
			groups[k] = a
			order = append(order, k)
		} else {
			switch n.op {
			case "sum":
				a.v += s.value
			case "min":
				a.v = math.Min(a.v, s.value)
			case "max":
				a.v = math.Max(a.v, s.value)
			}
		}
		a.n++
	}
	var out []promSeries
	for _, k := range order {
		a := groups[k]
		if n.op == "count" {
			a.v = float64(a.n)
		}
		out = append(out, promSeries{a.labels, a.v})
	}
	return promValue{vec: out}, nil
}

func arith(op byte, a, b float64) float64 {
	switch op {
	case '+':
		return a + b
	case '-':
		return a - b
	case '*':
		return a * b
	}
	return a / b // PromQL: x/0 is ±Inf, 0/0 NaN
}

func (n *binaryNode) eval(e *promEval) (promValue, error) {
	l, err := n.l.eval(e)
	if err != nil {
		return promValue{}, err
	}
	r, err := n.r.eval(e)
	if err != nil {
		return promValue{}, err
	}
	switch {
	case l.scalar != nil && r.scalar != nil:
		f := arith(n.op, *l.scalar, *r.scalar)
		return promValue{scalar: &f}, nil
	case l.scalar != nil || r.scalar != nil:
		var out []promSeries
		vec := l.vec
		if vec == nil {
			vec = r.vec
		}
		for _, s := range vec {
			a, b := s.value, s.value
			if l.scalar != nil {
				a = *l.scalar
			} else {
				b = *r.scalar
			}
			out = append(out, promSeries{withoutName(s.labels), arith(n.op, a, b)})
		}
		return promValue{vec: out}, nil
	}
	right := map[string]float64{}
	for _, s := range r.vec {
		k := labelKey(s.labels)
		if _, dup := right[k]; dup {
			return promValue{}, fmt.Errorf("many-to-many matching on %s", k)
		}
		right[k] = s.value
	}
	var out []promSeries
	for _, s := range l.vec {
		if b, ok := right[labelKey(s.labels)]; ok {
			out = append(out, promSeries{withoutName(s.labels), arith(n.op, s.value, b)})
		}
	}
	return promValue{vec: out}, nil
}

// promParser is a recursive-descent parser with operator precedence.
type promParser struct {
	src string
	pos int
}

func (p *promParser) skipSpace() {
	for p.pos < len(p.src) && unicode.IsSpace(rune(p.src[p.pos])) {
		p.pos++
	}
}

func (p *promParser) peek() byte {
	p.skipSpace()
	if p.pos < len(p.src) {
		return p.src[p.pos]
	}
	return 0
}

func (p *promParser) expect(s string) error {
	p.skipSpace()
	if !strings.HasPrefix(p.src[p.pos:], s) {
		return fmt.Errorf("want %q at %d in %q", s, p.pos, p.src)
	}
	p.pos += len(s)
	return nil
}

func (p *promParser) ident() string {
	p.skipSpace()
	start := p.pos
	for p.pos < len(p.src) {
		c := rune(p.src[p.pos])
		if c != '_' && c != ':' && !unicode.IsLetter(c) && !(p.pos > start && unicode.IsDigit(c)) {
			break
		}
		p.pos++
	}
	return p.src[start:p.pos]
}

func precedence(op byte) int {
	switch op {
	case '+', '-':
		return 1
	case '*', '/':
		return 2
	}
	return 0
}

// parseExpr parses operands joined by operators binding tighter than min.
func (p *promParser) parseExpr(min int) (promNode, error) {
	l, err := p.parseOperand()
	if err != nil {
		return nil, err
	}
	for {
		op := p.peek()
		prec := precedence(op)
		if prec == 0 || prec <= min {
			return l, nil
		}
		p.pos++
		if w := p.ident(); w == "on" || w == "ignoring" || w == "bool" {
			return nil, fmt.Errorf("vector matching %q is not supported", w)
		} else if w != "" {
			p.pos -= len(w) // an operand, not a modifier
		}
		r, err := p.parseExpr(prec) // left-associative
		if err != nil {
			return nil, err
		}
		l = &binaryNode{op: op, l: l, r: r}
	}
}

func (p *promParser) parseOperand() (promNode, error) {
	switch c := p.peek(); {
	case c == '(':
		p.pos++
		n, err := p.parseExpr(0)
		if err != nil {
			return nil, err
		}
		return n, p.expect(")")
	case c >= '0' && c <= '9' || c == '.':
		start := p.pos
		for p.pos < len(p.src) && strings.IndexByte("0123456789.eE", p.src[p.pos]) >= 0 {
			p.pos++
		}
		f, err := strconv.ParseFloat(p.src[start:p.pos], 64)
		return numberNode(f), err
	case c == '{':
		return p.parseSelector("")
	}
	name := p.ident()
	if name == "" {
		return nil, fmt.Errorf("unexpected %q at %d in %q", p.src[p.pos:], p.pos, p.src)
	}
	switch name {
	case "sum", "min", "max", "count":
		n := &aggNode{op: name}
		if w := p.ident(); w == "by" {
			by, err := p.labelList()
			if err != nil {
				return nil, err
			}
			n.by = by
		} else if w != "" {
			return nil, fmt.Errorf("%s %s: only by (...) is supported", name, w)
		}
		if err := p.expect("("); err != nil {
			return nil, err
		}
		x, err := p.parseExpr(0)
		if err != nil {
			return nil, err
		}
		n.x = x
		if err := p.expect(")"); err != nil {
			return nil, err
		}
		if w := p.ident(); w == "by" && n.by == nil {
			if n.by, err = p.labelList(); err != nil {
				return nil, err
			}
		} else if w != "" {
			return nil, fmt.Errorf("%s (...) %s: not supported", name, w)
		}
		return n, nil
	case "rate", "increase":
		if err := p.expect("("); err != nil {
			return nil, err
		}
		sel, err := p.parseSelector(p.ident())
		if err != nil {
			return nil, err
		}
		if !sel.ranged {
			return nil, fmt.Errorf("%s needs a range vector", name)
		}
		return &funcNode{name: name, arg: sel}, p.expect(")")
	}
	if p.peek() == '(' {
		return nil, fmt.Errorf("function %s is not supported", name)
	}
	return p.parseSelector(name)
}

func (p *promParser) labelList() ([]string, error) {
	if err := p.expect("("); err != nil {
		return nil, err
	}
	out := []string{}
	for p.peek() != ')' {
		l := p.ident()
		if l == "" {
			return nil, fmt.Errorf("want a label name at %d in %q", p.pos, p.src)
		}
		out = append(out, l)
		if p.peek() == ',' {
			p.pos++
		}
	}
	p.pos++
	return out, nil
}

func (p *promParser) parseSelector(name string) (*selectorNode, error) {
	n := &selectorNode{}
	if name != "" {
		n.matchers = append(n.matchers, matcher{"__name__", "=", name})
	}
	if p.peek() == '{' {
		p.pos++
		for p.peek() != '}' {
			l := p.ident()
			p.skipSpace()
			var op string
			for _, o := range []string{"=~", "!~", "!=", "="} {
				if strings.HasPrefix(p.src[p.pos:], o) {
					op = o
					break
				}
			}
			if l == "" || op == "" {
				return nil, fmt.Errorf("bad matcher at %d in %q", p.pos, p.src)
			}
			p.pos += len(op)
			p.skipSpace()
			if p.pos >= len(p.src) || p.src[p.pos] != '"' {
				return nil, fmt.Errorf("want a quoted value at %d in %q", p.pos, p.src)
			}
			end := p.pos + 1
			for end < len(p.src) && p.src[end] != '"' {
				if p.src[end] == '\\' {
					end++
				}
				end++
			}
			if end >= len(p.src) {
				return nil, fmt.Errorf("unterminated string in %q", p.src)
			}
			v, err := strconv.Unquote(p.src[p.pos : end+1])
			if err != nil {
				return nil, err
			}
			p.pos = end + 1
			n.matchers = append(n.matchers, matcher{l, op, v})
			if p.peek() == ',' {
				p.pos++
			}
		}
		p.pos++
	}
	if len(n.matchers) == 0 {
		return nil, fmt.Errorf("empty selector at %d in %q", p.pos, p.src)
	}
	if p.peek() == '[' {
		end := strings.IndexByte(p.src[p.pos:], ']')
		if end < 0 {
			return nil, fmt.Errorf("unterminated range in %q", p.src)
		}
		p.pos += end + 1
		n.ranged = true
	}
	if w := p.ident(); w == "offset" {
		return nil, fmt.Errorf("offset is not supported")
	} else {
		p.pos -= len(w)
	}
	return n, nil
}
