defmodule Keyring.CRDT.HLC do
  @moduledoc false
  # Hybrid logical clock (Kulkarni et al., 2014): `{wall_ms, logical}`.
  #
  # Timestamps follow the wall clock when it moves forward and a logical counter
  # otherwise, and every timestamp a replica issues is greater than every
  # timestamp it has observed. Unlike `System.monotonic_time/1` (which DeltaCrdt
  # uses and whose offset is arbitrary per VM) they are comparable across nodes,
  # so "last writer wins" means the write that happened last, up to clock skew.
  # Ties between replicas are broken by the replica id (see `Keyring.CRDT.AWLWWMap`).

  @type t :: {wall_ms :: non_neg_integer(), logical :: non_neg_integer()}

  @doc "A clock that has seen nothing."
  @spec new() :: t()
  def new, do: {0, 0}

  @doc "The wall clock in milliseconds (the default `now`)."
  @spec wall() :: non_neg_integer()
  def wall, do: System.os_time(:millisecond)

  @doc "Advances the clock for a local event; the result is the event's timestamp."
  @spec tick(t(), non_neg_integer()) :: t()
  def tick({wall, logical}, now \\ wall()) do
    if now > wall, do: {now, 0}, else: {wall, logical + 1}
  end

  @doc "Advances the clock past a timestamp received from another replica."
  @spec observe(t(), t(), non_neg_integer()) :: t()
  def observe({w, l} = clock, {rw, rl}, now \\ wall()) do
    m = max(now, max(w, rw))

    cond do
      m == w and m == rw -> {m, max(l, rl) + 1}
      m == w -> {w, l + 1}
      m == rw -> {rw, rl + 1}
      true -> tick(clock, now)
    end
  end
end
