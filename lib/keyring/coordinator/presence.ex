defmodule Keyring.Coordinator.Presence do
  @moduledoc """
  One node's presence entry, as every node sees it.

    * `:node_id` — the node's Ed25519 public key, text form (`Keyring.Identity.node_id/1`)
    * `:node` — its Erlang node name
    * `:incarnation` — bumped on every start; a higher one means the node restarted
    * `:mesh_addr` — the address of its mesh (QUIC member endpoint), `"host:port"`
    * `:keyrings` — ids of the keyrings it belongs to (32-byte keys; members of a
      shared keyring dial each other at `:mesh_addr`, see `Keyring.Mesh`)
    * `:capabilities` — what tasks it takes (`Keyring.Coordinator.register/3`)
    * `:health` — `%{run_queue:, schedulers:, memory_mb:, processes:, started_at:}`
      sampled at the last publication (`started_at` in ms since the epoch; see `uptime_s/1`)
    * `:version` — Keyring version
    * `:status` — `:up` or `:down`, decided locally by the node reading it
    * `:pid` — the node's coordinator (routing target)
  """

  @enforce_keys [:node_id, :node, :incarnation]
  defstruct [
    :node_id,
    :node,
    :incarnation,
    :mesh_addr,
    :pid,
    :version,
    keyrings: [],
    capabilities: [],
    health: %{},
    status: :up
  ]

  @type t :: %__MODULE__{
          node_id: String.t(),
          node: node(),
          incarnation: pos_integer(),
          mesh_addr: String.t() | nil,
          keyrings: [<<_::256>>],
          pid: pid() | nil,
          version: String.t() | nil,
          capabilities: [term()],
          health: map(),
          status: :up | :down
        }

  @doc "Seconds since the node's VM started."
  @spec uptime_s(t()) :: non_neg_integer() | nil
  def uptime_s(%__MODULE__{health: %{started_at: t}}),
    do: max(div(System.os_time(:millisecond) - t, 1000), 0)

  def uptime_s(_), do: nil

  @doc false
  # The current health sample (previous sample passed to keep started_at).
  def sample_health(previous) do
    %{
      run_queue: :erlang.statistics(:total_run_queue_lengths_all),
      schedulers: System.schedulers_online(),
      memory_mb: div(:erlang.memory(:total), 1024 * 1024),
      processes: :erlang.system_info(:process_count),
      started_at: previous[:started_at] || vm_started_at()
    }
  end

  defp vm_started_at do
    {uptime_ms, _} = :erlang.statistics(:wall_clock)
    System.os_time(:millisecond) - uptime_ms
  end

  @doc false
  # Whether health moved enough to publish before the periodic refresh.
  def material_change?(old, new) do
    load_level(old) != load_level(new) or
      abs((old[:memory_mb] || 0) - new[:memory_mb]) * 10 > max(new[:memory_mb], 10)
  end

  # Run queue per scheduler, coarsely: 0 idle, 1 busy, 2 loaded, 3 overloaded.
  defp load_level(%{run_queue: rq, schedulers: s}) do
    per = rq / max(s, 1)

    cond do
      per < 1 -> 0
      per < 2 -> 1
      per < 4 -> 2
      true -> 3
    end
  end

  defp load_level(_), do: nil

  defimpl Inspect do
    import Inspect.Algebra

    def inspect(p, opts) do
      short = String.slice(p.node_id || "", 0, 8)
      h = p.health

      health =
        "rq=#{Map.get(h, :run_queue, "?")} mem=#{Map.get(h, :memory_mb, "?")}MB up=#{Keyring.Coordinator.Presence.uptime_s(p) || "?"}s"

      concat([
        "#Keyring.Coordinator.Presence<",
        to_doc(p.node, opts),
        " ",
        Atom.to_string(p.status),
        " id=#{short}… inc=#{p.incarnation} caps=",
        to_doc(p.capabilities, opts),
        " ",
        health,
        if(p.mesh_addr, do: " mesh=#{p.mesh_addr} keyrings=#{length(p.keyrings)}", else: ""),
        ">"
      ])
    end
  end
end
