defmodule Keyring.DAG.Fetch do
  @moduledoc false
  # Keyring.DAG.fetch/2: options, the pin that protects what arrives, and
  # the call into the mesh's DAG sync (protocol 4, native/keyring_net
  # src/protocols/dag). The sync itself runs on the mesh's Rust runtime and
  # answers this process by message; nothing here holds a scheduler.

  alias Keyring.{Instance, Native}
  alias Keyring.Store.{Cid, Tags}

  @schema [
    from: [type: :string, doc: "the provider: node id text or 32-byte key (required)"],
    keyring: [
      type: :string,
      doc: "keyring to speak for (default: the only keyring shared with `from`)"
    ],
    address: [type: :string, doc: "`\"host:port\"` of the provider (default: learned)"],
    have: [
      type: {:list, :string},
      default: [],
      doc:
        "roots of DAGs this node holds completely: the provider skips what it reaches from them"
    ],
    blobs: [type: :boolean, default: false, doc: "also fetch the blobs nodes link (≤ 1 MiB each)"],
    max_depth: [type: :non_neg_integer, doc: "do not follow links below this depth"],
    pin: [
      type: :boolean,
      default: true,
      doc: "pin the root (before the sync starts) so GC keeps everything fetched"
    ],
    timeout: [type: :pos_integer, default: 60_000, doc: "ms for the whole sync"],
    instance: [type: :atom, default: Keyring, doc: "the local instance"]
  ]

  def schema, do: @schema

  def fetch(root, opts) do
    opts = Keyring.Options.validate!(opts, @schema, "Keyring.DAG.fetch")
    peer = peer!(opts[:from])
    root = Cid.parse!(root)
    have = Enum.map(opts[:have], &Cid.parse!/1)
    instance = opts[:instance]
    mesh = Instance.fetch!(instance, :mesh)

    with {:ok, ring} <- keyring(opts, peer),
         :ok <- pin(root, opts) do
      ref = make_ref()

      :ok =
        Native.mesh_dag_fetch(
          mesh,
          ref,
          ring,
          peer,
          opts[:address],
          [root],
          have,
          opts[:blobs],
          opts[:max_depth],
          opts[:timeout]
        )

      receive do
        {:keyring_reply, ^ref, {:ok, report}} -> {:ok, present(report)}
        {:keyring_reply, ^ref, {:error, reason}} -> {:error, reason}
      after
        opts[:timeout] + 2_000 -> {:error, :timeout}
      end
    end
  end

  defp pin(root, opts) do
    if opts[:pin] do
      case Tags.pin(root, instance: opts[:instance]) do
        {:ok, _} -> :ok
        error -> error
      end
    else
      :ok
    end
  end

  defp present(report) do
    %{
      report
      | missing: Enum.map(report.missing, &Cid.encode/1),
        deferred: Enum.map(report.deferred, fn {cid, size} -> {Cid.encode(cid), size} end)
    }
  end

  defp peer!(nil), do: raise(ArgumentError, "Keyring.DAG.fetch needs from: (the provider)")
  defp peer!(<<_::256>> = key), do: key
  defp peer!(text) when is_binary(text), do: Keyring.Ring.id!(text)

  defp keyring(opts, peer) do
    case opts[:keyring] do
      nil ->
        shared =
          for {id, view} <- Instance.fetch!(opts[:instance], :rings),
              Map.has_key?(view.members, peer),
              do: id

        case shared do
          [id] -> {:ok, id}
          [] -> {:error, :not_member}
          ids -> {:error, {:ambiguous_keyring, Enum.sort(ids)}}
        end

      id ->
        {:ok, Keyring.Ring.id!(id)}
    end
  end
end
