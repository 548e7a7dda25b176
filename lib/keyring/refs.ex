defmodule Keyring.Refs do
  @moduledoc """
  Signed refs: named, mutable pointers to a root cid, published by their
  author in a keyring.

  A ref says "in keyring K, author A's `name` points to `root`, version
  `seq`", signed by A's Ed25519 key under the refs' own signing domain
  (`keyring/ref/v1`). Only A can move it: the key in the ref is the key that
  must have signed it. A ref replaces the one held for the same name only
  with a strictly higher `seq`, so a replayed older ref is refused
  (`{:stale, seq, current}`), and two different refs at one `seq` are
  refused as `{:equivocation, seq}`.

      iex> dir = Path.join(System.tmp_dir!(), "keyring-refs-doc-#{System.unique_integer([:positive])}")
      iex> {:ok, _} = Keyring.start_link(name: RefsDoc, data_dir: dir)
      iex> {:ok, ring} = Keyring.Ring.create("site", instance: RefsDoc)
      iex> {:ok, cid} = Keyring.Store.put("v1", instance: RefsDoc)
      iex> {:ok, ref} = Keyring.Refs.publish(ring, "www", cid, instance: RefsDoc)
      iex> {ref.seq, ref.root == cid}
      {1, true}
      iex> me = Keyring.Identity.public_key(instance: RefsDoc)
      iex> {:ok, %Keyring.Refs.Ref{seq: 1}} = Keyring.Refs.get(ring, me, "www", instance: RefsDoc)

  Refs are stored durably; every publish and every accepted ref from
  elsewhere is announced on `"keyring:feed"` as
  `{:keyring_feed, :ref, %Keyring.Refs.Ref{}}` (see `Keyring.Feed`).

  Names are 1..128 bytes of printable ASCII without spaces. Every function
  takes `instance:` (default `Keyring`).
  """

  alias Keyring.{Native, Ring, Store}
  alias Keyring.Feed.Layout
  alias Keyring.Refs.{Ref, Server}
  alias Keyring.Store.Cid

  @max_ingest 256

  @doc """
  Points this node's ref `name` in `keyring` at `root` (a cid), with the next
  sequence number. Answers once the signed ref is durable.
  """
  @spec publish(Ring.id() | String.t(), String.t(), Cid.t() | <<_::256>>, keyword()) ::
          {:ok, Ref.t()} | {:error, term()}
  def publish(keyring, name, root, opts \\ []) when is_binary(name) do
    opts = Keyword.validate!(opts, instance: Keyring)
    ring = Ring.id!(keyring)

    if ring in Ring.list(instance: opts[:instance]) do
      GenServer.call(Server.server(opts[:instance]), {:publish, ring, name, Cid.parse!(root)})
    else
      {:error, :not_member}
    end
  end

  @doc "The ref `name` of `author` in `keyring`."
  @spec get(Ring.id() | String.t(), Ring.id() | String.t(), String.t(), keyword()) ::
          {:ok, Ref.t()} | {:error, term()}
  def get(keyring, author, name, opts \\ []) do
    opts = Keyword.validate!(opts, instance: Keyring)

    with {:ok, bytes} <-
           Store.get_ref(Layout.ref(Ring.id!(keyring), Ring.id!(author), name),
             instance: opts[:instance]
           ),
         {:ok, fields} <- Native.ref_decode(bytes),
         do: {:ok, Ref.from_native(fields)}
  end

  @doc "The refs held in `keyring`, by author then name. Options: `:author`, `:limit` (10,000)."
  @spec list(Ring.id() | String.t(), keyword()) :: {:ok, [Ref.t()]} | {:error, term()}
  def list(keyring, opts \\ []) do
    opts = Keyword.validate!(opts, [:author, instance: Keyring, limit: 10_000])
    author = opts[:author] && Ring.id!(opts[:author])
    prefix = Layout.refs(Ring.id!(keyring), author)

    with {:ok, pairs} <- Store.list_refs(prefix, instance: opts[:instance], limit: opts[:limit]) do
      {:ok,
       for {_, bytes} <- pairs, {:ok, fields} = Native.ref_decode(bytes) do
         Ref.from_native(fields)
       end}
    end
  end

  @doc """
  Ingests signed refs received from elsewhere for `keyring` (at most 256).
  Each is verified (signature by its author, the keyring, the author a
  member) and kept only if newer than the held one. One result per ref:
  `{:ok, :new | {:replaces, seq} | :duplicate}` or `{:error, reason}`
  (`:bad_signature`, `:wrong_keyring`, `:not_a_member`, `{:stale, seq, current}`,
  `{:equivocation, seq}`, `{:malformed, why}`).
  """
  @spec ingest(Ring.id() | String.t(), [binary()], keyword()) ::
          {:ok, [{:ok, term()} | {:error, term()}]} | {:error, term()}
  def ingest(keyring, refs, opts \\ []) when is_list(refs) do
    opts = Keyword.validate!(opts, instance: Keyring)
    ring = Ring.id!(keyring)

    cond do
      length(refs) > @max_ingest ->
        {:error, {:too_many, @max_ingest}}

      not Enum.all?(refs, &is_binary/1) ->
        raise ArgumentError, "refs must be binaries"

      true ->
        with {:ok, info} <- Ring.info(ring, instance: opts[:instance]) do
          members = Enum.map(info.members, & &1.key)
          GenServer.call(Server.server(opts[:instance]), {:ingest, ring, members, refs}, 60_000)
        end
    end
  end
end
