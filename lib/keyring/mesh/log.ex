defmodule Keyring.Mesh.Log do
  @moduledoc false
  # A keyring's membership as the functional core sees it: the verified
  # entry tree held in Rust (a ring resource, see
  # native/keyring_core/src/membership) and the summary it had after its last
  # change. The resource is extended in place and only ever grows (entries
  # are verified once, when their parent is known; known entries cost a hash
  # lookup), so a `t()` is a handle plus a snapshot, and every function that
  # changes the ring answers the new snapshot.

  alias Keyring.Native

  defstruct [:ring, :summary]

  @type key :: <<_::256>>
  @type member :: {key(), [String.t()], non_neg_integer(), boolean()}
  @type t :: %__MODULE__{ring: reference(), summary: map()}
  @type op ::
          {:add_member, key(), non_neg_integer(), [String.t()]}
          | {:remove_member, key()}
          | {:add_admin, key()}
          | {:add_admin, key(), non_neg_integer()}
          | {:remove_admin, key()}
          | {:rotate_root, key()}
          | {:revoke_invite, key(), binary()}
          | tuple()

  @doc "A new keyring: the genesis entry signed by `root`, with `admins` as first admins."
  @spec create(reference(), String.t(), [key()], non_neg_integer()) ::
          {:ok, t()} | {:error, term()}
  def create(root, name, admins, now) do
    with {:ok, ring} <- Native.ring_create(root, name, admins, now), do: snapshot(ring, now)
  end

  @doc "Entries this node stored itself (any order; verified once, no clock check)."
  @spec open([binary()], non_neg_integer()) :: {:ok, t()} | {:error, term()}
  def open(entries, now) when is_list(entries) do
    with {:ok, ring} <- Native.ring_open(entries), do: snapshot(ring, now)
  end

  @doc """
  Entries from a peer (the admin's answer to a join): the genesis is
  verified alone, the rest ingested under every rule, clock included.
  """
  @spec open_remote([binary()], non_neg_integer()) :: {:ok, t()} | {:error, term()}
  def open_remote([genesis | rest], now) do
    with {:ok, ring} <- Native.ring_open([genesis]),
         {:ok, report} <- Native.ring_ingest(ring, rest, now),
         :ok <- refused(report),
         do: snapshot(ring, now)
  end

  def open_remote([], _now), do: {:error, :no_genesis}

  @doc "Signs `op` with `signer` on the effective head; answers the new snapshot and entry."
  @spec append(t(), reference(), op(), non_neg_integer()) ::
          {:ok, t(), binary()} | {:error, term()}
  def append(log, signer, op, now) do
    with {:ok, entry} <- Native.ring_append(log.ring, signer, op, now),
         {:ok, log} <- snapshot(log.ring, now),
         do: {:ok, log, entry}
  end

  @doc """
  Takes what `incoming` adds. The report says how many entries were new
  (`:added`), which fork points gained a branch (`:forks`) and, when the
  effective chain moved to another branch, the operations that lost
  (`:switched`).
  """
  @spec ingest(t(), [binary()], non_neg_integer()) :: {:ok, t(), map()} | {:error, term()}
  def ingest(log, incoming, now) when is_list(incoming) do
    with {:ok, report} <- Native.ring_ingest(log.ring, incoming, now) do
      if report.added > 0 or report.forks != [] do
        with {:ok, log} <- snapshot(log.ring, now), do: {:ok, log, report}
      else
        {:ok, log, report}
      end
    end
  end

  @doc "The first rule an ingest refused an entry for, if it refused any."
  @spec refused(map()) :: :ok | {:error, term()}
  def refused(%{rejected: 0}), do: :ok
  def refused(%{errors: [first | _]}), do: {:error, first}
  def refused(%{rejected: _}), do: {:error, :rejected}

  @doc "The op that admits `joiner` with `invite` (bytes), or the rule that refuses it."
  @spec admit(t(), binary(), key(), non_neg_integer(), pos_integer()) ::
          {:ok, op()} | {:error, term()}
  def admit(log, invite, joiner, now, joins_per_hour),
    do: Native.ring_admit(log.ring, invite, joiner, now, joins_per_hour)

  @doc "Every entry, parents first."
  @spec entries(t()) :: [binary()]
  def entries(log), do: entries_since(log, [])

  @doc "The entries a peer lacks, given the locator it sent (`heads/1`)."
  @spec entries_since(t(), [<<_::256>>]) :: [binary()]
  def entries_since(log, locator) do
    {:ok, entries} = Native.ring_entries(log.ring, locator)
    entries
  end

  @doc "What to tell a peer in anti-entropy: `%{head, heads, locator, length}`."
  @spec heads(t()) :: map()
  def heads(log) do
    {:ok, heads} = Native.ring_heads(log.ring)
    heads
  end

  @spec id(t()) :: key()
  def id(log), do: log.summary.id

  @spec name(t()) :: String.t()
  def name(log), do: log.summary.name

  @spec members(t()) :: [member()]
  def members(log), do: log.summary.members

  @spec admin?(t(), key()) :: boolean()
  def admin?(log, key), do: Enum.any?(members(log), &match?({^key, _, _, true}, &1))

  @spec member?(t(), key()) :: boolean()
  def member?(log, key), do: Enum.any?(members(log), &(elem(&1, 0) == key))

  @spec info(t()) :: map()
  def info(log) do
    s = log.summary

    %{
      id: s.id,
      name: s.name,
      root: s.root,
      length: s.length,
      head: s.head,
      members:
        Enum.map(s.members, fn {key, roles, expires, admin?} ->
          %{key: key, roles: roles, expires_at_ms: expires, admin: admin?}
        end),
      revoked: s.revoked,
      forks: s.forks
    }
  end

  defp snapshot(ring, now) do
    with {:ok, summary} <- Native.ring_summary(ring, now) do
      {:ok, %__MODULE__{ring: ring, summary: Map.drop(summary, [:verified, :pending, :side])}}
    end
  end
end
