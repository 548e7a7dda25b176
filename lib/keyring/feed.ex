defmodule Keyring.Feed do
  @moduledoc """
  Feeds: append-only, hash-chained logs of signed entries, one per author in
  each keyring (Egregore's model).

  Each entry carries its author, its sequence number (from 1), the hash of
  the entry before it, a timestamp, a content type and its content, and is
  signed by the author's Ed25519 key under the feed's own signing domain
  (`keyring/feed/v1`). Content up to 16 KiB travels inline; larger content
  is put in the store as a blob and the entry names its cid.

      iex> dir = Path.join(System.tmp_dir!(), "keyring-feed-doc-#{System.unique_integer([:positive])}")
      iex> {:ok, _} = Keyring.start_link(name: FeedDoc, data_dir: dir)
      iex> {:ok, ring} = Keyring.Ring.create("notes", instance: FeedDoc)
      iex> {:ok, entry} = Keyring.Feed.append(ring, "hello", type: "text/plain", instance: FeedDoc)
      iex> {entry.seq, entry.content}
      {1, "hello"}
      iex> {:ok, [e]} = Keyring.Feed.query(keyring: ring, type: "text/plain", instance: FeedDoc)
      iex> e.hash == entry.hash
      true

  ## Ingest

  Entries from elsewhere (`ingest/3`) are verified before anything is kept:
  the signature must verify for the entry's author, the author must be a
  member of the keyring, and the entry must belong to that keyring. Then:

    * an entry that links to its feed's head is chained (and stored);
    * an entry whose predecessor has not arrived waits, in memory and
      bounded (4096 per feed, 64 MiB in all, at most 2^20 ahead), and is
      chained as soon as the gap fills;
    * a fork, two different entries at one sequence number (or an entry
      whose `prev` is not the hash of the entry held before it), is reported
      and its evidence stored, never merged: the chain keeps its branch.

  Appends and ingests answer only once what they chained is durable.

  ## Events

  On `Keyring.PubSub` topic `"keyring:feed"` (`subscribe/1`), locally:

    * `{:keyring_feed, :entry, %Keyring.Feed.Entry{}}` for every entry
      chained, local or ingested, in sequence order;
    * `{:keyring_feed, :fork, %{keyring: id, author: key, seq: n, entry: %Keyring.Feed.Entry{}}}`
      when a fork is found (`entry` is the one that revealed it);
    * `{:keyring_feed, :ref, %Keyring.Refs.Ref{}}` when a signed ref is
      published or replaced (see `Keyring.Refs`).

  ## Follows

  `follow/3` and `unfollow/3` record, per keyring, which authors this node
  wants; with no follows, it wants every author of the keyring (Egregore's
  rule). Replication between members uses them.

  ## Replication

  Feeds and signed refs replicate over the mesh between members of the
  keyring they are published in (mesh protocol 5):

    * every entry and ref this node authors is pushed, as soon as it is
      chained, to every member linked in that keyring (p95 from `append/3`
      to the entry event on each of 10 followers: 7.6 ms on the shared
      2-core machine, `bench/feeds.exs`);
    * when a member links up (again), this node sends it its heads and its
      follows and ingests the entries that follow them, in rounds of up to
      2,048, and the member's refs (a node that was offline while a feed
      grew by 1,000 entries has them all a moment after it reconnects);
    * whatever arrives goes through `ingest/3` and `Keyring.Refs.ingest/3`:
      a wrong signature or a non-member is refused, a fork is reported, an
      older ref is refused, a gap waits; entries of authors this node does
      not follow in that keyring (when it follows anyone there) are dropped
      on arrival.

  Pushes from one member are rate-limited (1,024 at once, 4,096/s) and
  pulls it runs on this node bounded (2 at once); messages are decoded in
  Rust with size limits.

  Every function takes `instance:` (the local Keyring instance, default
  `Keyring`). Keyring ids and author keys may be 32-byte keys or text form.
  """

  alias Keyring.{Native, Ring, Store}
  alias Keyring.Feed.{Entry, Layout, Server}

  @max_inline 16 * 1024
  @max_ingest 256
  @call_timeout 60_000

  @type ingest_result ::
          {:ok, :chained | :held | :duplicate | :conflicting} | {:error, term()}

  @doc """
  Appends `content` (a binary) to this node's feed in `keyring`. Options:
  `:type` (content type, 1..64 bytes of `[a-z0-9/._+-]`, default
  `"application/octet-stream"`). Answers once the entry is durable.
  """
  @spec append(Ring.id() | String.t(), binary(), keyword()) ::
          {:ok, Entry.t()} | {:error, term()}
  def append(keyring, content, opts \\ []) when is_binary(content) do
    opts = Keyword.validate!(opts, instance: Keyring, type: "application/octet-stream")
    ring = Ring.id!(keyring)

    unless is_binary(opts[:type]) and opts[:type] =~ ~r/\A[a-z0-9\/._+-]{1,64}\z/,
      do:
        raise(
          ArgumentError,
          "a content type is 1..64 bytes of [a-z0-9/._+-], got: #{inspect(opts[:type])}"
        )

    with :ok <- member(ring, opts[:instance]),
         {:ok, content} <- content(content, opts[:instance]) do
      GenServer.call(
        Server.server(opts[:instance]),
        {:append, ring, opts[:type], content},
        @call_timeout
      )
    end
  end

  @doc """
  Ingests entries received from elsewhere (encoded, as in `Entry.bytes`) for
  `keyring`, at most 256 per call. Answers one result per entry:
  `{:ok, :chained | :held | :duplicate | :conflicting}` or
  `{:error, reason}` (`:bad_signature`, `:not_a_member`, `:wrong_keyring`,
  `{:malformed, why}`, `{:too_far_ahead, seq, head}`, `{:held_full, seq}`).
  """
  @spec ingest(Ring.id() | String.t(), [binary()], keyword()) ::
          {:ok, [ingest_result()]} | {:error, term()}
  def ingest(keyring, entries, opts \\ []) when is_list(entries) do
    opts = Keyword.validate!(opts, instance: Keyring)
    ring = Ring.id!(keyring)

    cond do
      length(entries) > @max_ingest ->
        {:error, {:too_many, @max_ingest}}

      not Enum.all?(entries, &is_binary/1) ->
        raise ArgumentError, "entries must be binaries"

      true ->
        with {:ok, info} <- Ring.info(ring, instance: opts[:instance]) do
          members = Enum.map(info.members, & &1.key)

          GenServer.call(
            Server.server(opts[:instance]),
            {:ingest, ring, members, entries},
            @call_timeout
          )
        end
    end
  end

  @doc """
  Entries from the store, in (keyring, author, seq) order. Options:
  `:keyring`, `:author` (default: all), `:from` / `:to` (sequence numbers,
  inclusive; default all), `:type` (exact content type), `:limit` (default
  1000).
  """
  @spec query(keyword()) :: {:ok, [Entry.t()]} | {:error, term()}
  def query(opts \\ []) do
    opts =
      Keyword.validate!(opts, [
        :keyring,
        :author,
        :type,
        instance: Keyring,
        from: 1,
        to: nil,
        limit: 1000
      ])

    ring = opts[:keyring] && Ring.id!(opts[:keyring])
    author = opts[:author] && Ring.id!(opts[:author])

    feeds =
      cond do
        ring && author ->
          [{ring, author}]

        true ->
          feeds(ring, opts[:instance])
          |> Enum.filter(fn {_, a} -> is_nil(author) or a == author end)
      end

    Enum.reduce_while(feeds, {:ok, [], opts[:limit]}, fn {r, a}, {:ok, acc, left} ->
      case read(r, a, max(opts[:from], 1), opts[:to], opts[:type], left, opts[:instance]) do
        {:ok, got} when length(got) >= left -> {:halt, {:ok, acc ++ got, 0}}
        {:ok, got} -> {:cont, {:ok, acc ++ got, left - length(got)}}
        {:error, _} = error -> {:halt, error}
      end
    end)
    |> case do
      {:ok, entries, _} -> {:ok, entries}
      error -> error
    end
  end

  @doc "The head of an author's feed in `keyring`: `{seq, hash}`, or `nil` when empty."
  @spec head(Ring.id() | String.t(), Ring.id() | String.t(), keyword()) ::
          {non_neg_integer(), <<_::256>>} | nil
  def head(keyring, author, opts \\ []) do
    opts = Keyword.validate!(opts, instance: Keyring)

    {:ok, head} =
      GenServer.call(Server.server(opts[:instance]), {:head, Ring.id!(keyring), Ring.id!(author)})

    head
  end

  @doc "Every feed this node holds in `keyring`, as `{author, head_seq}`."
  @spec heads(Ring.id() | String.t(), keyword()) :: [{<<_::256>>, non_neg_integer()}]
  def heads(keyring, opts \\ []) do
    opts = Keyword.validate!(opts, instance: Keyring)
    {:ok, heads} = GenServer.call(Server.server(opts[:instance]), {:heads, Ring.id!(keyring)})
    heads
  end

  @doc """
  The forks found in `keyring`'s feeds: `%{author, seq, entry}` where
  `entry` revealed the fork (the chain keeps its own entry at `seq`).
  """
  @spec forks(Ring.id() | String.t(), keyword()) ::
          {:ok, [%{author: <<_::256>>, seq: pos_integer(), entry: Entry.t()}]} | {:error, term()}
  def forks(keyring, opts \\ []) do
    opts = Keyword.validate!(opts, instance: Keyring)
    prefix = Layout.forks(Ring.id!(keyring))

    with {:ok, pairs} <- Store.list_refs(prefix, instance: opts[:instance], limit: 100_000),
         {:ok, decoded} <- Native.feed_decode(Enum.map(pairs, &elem(&1, 1))) do
      {:ok,
       Enum.zip_with(pairs, decoded, fn {name, _}, fields ->
         <<author::binary-size(64), "/", seq::binary-size(16), _::binary>> =
           Layout.after_prefix(prefix, name)

         %{
           author: Base.decode16!(author, case: :lower),
           seq: String.to_integer(seq, 16),
           entry: Entry.from_native(fields)
         }
       end)}
    end
  end

  @doc "Follows `author` in `keyring` (durably). See \"Follows\" above."
  @spec follow(Ring.id() | String.t(), Ring.id() | String.t(), keyword()) ::
          :ok | {:error, term()}
  def follow(keyring, author, opts \\ []) do
    opts = Keyword.validate!(opts, instance: Keyring)

    Store.put_ref(Layout.follow(Ring.id!(keyring), Ring.id!(author)), "",
      instance: opts[:instance]
    )
  end

  @doc "Stops following `author` in `keyring`."
  @spec unfollow(Ring.id() | String.t(), Ring.id() | String.t(), keyword()) ::
          :ok | {:error, term()}
  def unfollow(keyring, author, opts \\ []) do
    opts = Keyword.validate!(opts, instance: Keyring)
    name = Layout.follow(Ring.id!(keyring), Ring.id!(author))

    with {:ok, _} <- Store.delete_ref(name, instance: opts[:instance]), do: :ok
  end

  @doc "The authors followed in `keyring` (empty: every author is wanted)."
  @spec follows(Ring.id() | String.t(), keyword()) :: [<<_::256>>]
  def follows(keyring, opts \\ []) do
    opts = Keyword.validate!(opts, instance: Keyring)
    prefix = Layout.follows(Ring.id!(keyring))
    {:ok, pairs} = Store.list_refs(prefix, instance: opts[:instance], limit: 100_000)
    Enum.map(pairs, fn {name, _} -> Layout.key_after(prefix, name) end)
  end

  @doc "Subscribes the caller to `\"keyring:feed\"` events (see above). Options: `:instance`."
  @spec subscribe(keyword()) :: :ok
  def subscribe(opts \\ []) do
    opts = Keyword.validate!(opts, instance: Keyring)
    Keyring.PubSub.subscribe(Server.topic(), instance: opts[:instance])
  end

  defp member(ring, instance) do
    if ring in Ring.list(instance: instance), do: :ok, else: {:error, :not_member}
  end

  defp content(data, _instance) when byte_size(data) <= @max_inline, do: {:ok, data}

  defp content(data, instance) do
    with {:ok, cid} <- Store.put(data, instance: instance),
         do: {:ok, {Keyring.Store.Cid.parse!(cid), byte_size(data)}}
  end

  defp feeds(ring, instance) do
    prefix = Layout.feeds(ring)
    {:ok, pairs} = Store.list_refs(prefix, instance: instance, limit: 1_000_000)

    for {name, _} <- pairs do
      <<"keyring/feeds/", r::binary-size(64), "/", a::binary-size(64)>> = name
      {Base.decode16!(r, case: :lower), Base.decode16!(a, case: :lower)}
    end
  end

  # Reads a feed block by block from `from` until `to`, a short block or `left` entries.
  defp read(ring, author, from, to, type, left, instance, acc \\ []) do
    {prefix, first} = Layout.block(ring, author, from)
    full = if first == 0, do: Layout.block_size() - 1, else: Layout.block_size()

    with {:ok, pairs} <- Store.list_refs(prefix, instance: instance, limit: Layout.block_size()),
         {:ok, decoded} <- Native.feed_decode(Enum.map(pairs, &elem(&1, 1))) do
      got =
        decoded
        |> Enum.map(&Entry.from_native/1)
        |> Enum.filter(&(&1.seq >= from and (is_nil(to) or &1.seq <= to)))
        |> Enum.filter(&(is_nil(type) or &1.type == type))
        |> Enum.take(left)

      acc = acc ++ got
      next = first + Layout.block_size()

      if length(pairs) == full and length(got) < left and (is_nil(to) or next <= to),
        do: read(ring, author, next, to, type, left - length(got), instance, acc),
        else: {:ok, acc}
    end
  end
end
