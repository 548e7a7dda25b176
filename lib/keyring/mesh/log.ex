defmodule Keyring.Mesh.Log do
  @moduledoc false
  # A keyring's verified membership log, as the functional core sees it: the
  # one place that talks to the membership NIFs. Every function returns a new
  # value; the rules (hash chain, admin signatures, revocation) live in
  # native/keyring_core/src/membership.

  alias Keyring.Native

  defstruct [:entries, :summary]

  @type key :: <<_::256>>
  @type member :: {key(), [String.t()], non_neg_integer(), boolean()}
  @type summary :: %{
          id: key(),
          name: String.t(),
          head: <<_::256>>,
          length: pos_integer(),
          members: [member()]
        }
  @type t :: %__MODULE__{entries: [binary()], summary: summary()}
  @type op ::
          {:add_member, key(), non_neg_integer(), [String.t()]}
          | {:remove_member | :add_admin | :remove_admin, key()}

  @doc "A new keyring: the genesis entry signed by `root`, with `admins` as first admins."
  @spec create(reference(), String.t(), [key()], non_neg_integer()) ::
          {:ok, t()} | {:error, term()}
  def create(root, name, admins, now) do
    with {:ok, entries} <- Native.ring_create(root, name, admins, now), do: open(entries, now)
  end

  @doc "Verifies a whole log (at load, or a log received from a joiner's admin)."
  @spec open([binary()], non_neg_integer()) :: {:ok, t()} | {:error, term()}
  def open(entries, now) when is_list(entries) do
    with {:ok, summary} <- Native.ring_verify(entries, now),
         do: {:ok, %__MODULE__{entries: entries, summary: summary}}
  end

  @doc "Signs `op` with `signer` and appends it; answers the new log and the entry."
  @spec append(t(), reference(), op(), non_neg_integer()) ::
          {:ok, t(), binary()} | {:error, term()}
  def append(log, signer, op, now) do
    with {:ok, entry} <- Native.ring_append(log.entries, signer, op, now),
         {:ok, log} <- open(log.entries ++ [entry], now),
         do: {:ok, log, entry}
  end

  @doc "Takes what `incoming` adds to the log; answers how many entries were new."
  @spec ingest(t(), [binary()], non_neg_integer()) ::
          {:ok, t(), non_neg_integer()} | {:error, term()}
  def ingest(log, incoming, now) when is_list(incoming) do
    with {:ok, merged} <- Native.ring_merge(log.entries, incoming) do
      added = length(merged) - length(log.entries)

      if added > 0 do
        with {:ok, log} <- open(merged, now), do: {:ok, log, added}
      else
        {:ok, log, 0}
      end
    end
  end

  @spec id(t()) :: key()
  def id(log), do: log.summary.id

  @spec name(t()) :: String.t()
  def name(log), do: log.summary.name

  @spec entries(t()) :: [binary()]
  def entries(log), do: log.entries

  @spec members(t()) :: [member()]
  def members(log), do: log.summary.members

  @spec admin?(t(), key()) :: boolean()
  def admin?(log, key), do: Enum.any?(members(log), &match?({^key, _, _, true}, &1))

  @spec member?(t(), key()) :: boolean()
  def member?(log, key), do: Enum.any?(members(log), &(elem(&1, 0) == key))

  @spec info(t()) :: map()
  def info(log) do
    %{
      id: id(log),
      name: name(log),
      length: log.summary.length,
      head: log.summary.head,
      members:
        Enum.map(members(log), fn {key, roles, expires, admin?} ->
          %{key: key, roles: roles, expires_at_ms: expires, admin: admin?}
        end)
    }
  end
end
