defmodule Keyring.CRDT.AWLWWMap do
  @moduledoc false
  # The pure core of `Keyring.CRDT`: an add-wins map whose concurrent values are
  # arbitrated last-writer-wins by hybrid logical clock timestamps.
  #
  # ## Model
  #
  # Every key carries its own causal context, so any subset of keys is a valid
  # delta on its own. A key's state is `{context, alive}`:
  #
  # * `context` — `%{replica => counter}`: the highest write ("dot") of each
  # replica this key has seen. A replica's writes to one key supersede each
  # other, so one counter per replica covers all of its earlier dots.
  # * `alive` — `%{replica => {counter, hlc, value}}`: the writes not yet
  # overwritten or removed (at most one per replica; normally just one).
  #
  # `put/6` replaces every write it has seen for the key by its own dot;
  # `delete/2` keeps the context and empties `alive` (a per-key tombstone). Join
  # is the causal join per key: a dot survives when both sides have it, or when
  # one side has it and the other side's context has not seen it. So a put
  # concurrent with a delete survives (add wins), and the visible value is the
  # alive write with the greatest `{hlc, replica}`.
  #
  # Because contexts are per key, never global, a transfer that carries only
  # some keys cannot make the receiver forget others — the failure behind
  # DeltaCrdt's delta_crdt_ex#65, where a partial sync with a full context
  # deleted keys on both sides.
  #
  # ## Digests
  #
  # For anti-entropy the map keeps a 64-bit hash per key (of its dots), summed (mod 2^64) into
  # `#{1024}` buckets by `:erlang.phash2(key, 1024)`, and a root sum. Two replicas
  # with equal roots hold the same dots; otherwise comparing bucket sums finds
  # which buckets to exchange.

  alias Keyring.CRDT.HLC

  @buckets 1024
  @mask 0xFFFFFFFFFFFFFFFF
  @word 4_294_967_296

  @type replica :: term()
  @type key_state ::
          {%{replica() => pos_integer()}, %{replica() => {pos_integer(), HLC.t(), term()}}}
  @type delta :: %{term() => key_state()}
  @type diff :: {:put, term(), term()} | {:delete, term()}

  @type t :: %__MODULE__{
          entries: %{term() => key_state()},
          hashes: %{term() => non_neg_integer()},
          buckets: %{non_neg_integer() => non_neg_integer()},
          root: non_neg_integer()
        }
  defstruct entries: %{}, hashes: %{}, buckets: %{}, root: 0

  @doc "An empty map."
  @spec new() :: t()
  def new, do: %__MODULE__{}

  @doc "The number of buckets digests are grouped in."
  @spec bucket_count() :: pos_integer()
  def bucket_count, do: @buckets

  @doc """
  Writes `value` at `key` with the dot `{replica, counter}` stamped `hlc`.
  `counter` must be greater than every counter `replica` used before.
  Returns the new map, the delta to ship, and the visible diffs.
  """
  @spec put(t(), replica(), pos_integer(), HLC.t(), term(), term()) :: {t(), delta(), [diff()]}
  def put(%__MODULE__{} = map, replica, counter, hlc, key, value) do
    {context, _alive} = Map.get(map.entries, key, {%{}, %{}})
    key_state = {Map.put(context, replica, counter), %{replica => {counter, hlc, value}}}
    old = value(map, key)
    map = store(map, key, key_state)
    {map, %{key => key_state}, diffs(key, old, {:ok, value})}
  end

  @doc "Removes `key` (the writes seen so far). A no-op when it is absent."
  @spec delete(t(), term()) :: {t(), delta(), [diff()]}
  def delete(%__MODULE__{} = map, key) do
    case Map.get(map.entries, key) do
      {context, alive} when map_size(alive) > 0 ->
        old = value(map, key)
        key_state = {context, %{}}
        {store(map, key, key_state), %{key => key_state}, diffs(key, old, :error)}

      _absent_or_tombstone ->
        {map, %{}, []}
    end
  end

  @doc """
  Joins a delta (any map, or list of `{key, key_state}`, from another
  replica) into `map`. Returns the new map and the visible diffs.
  """
  @spec join(t(), delta() | [{term(), key_state()}]) :: {t(), [diff()]}
  def join(%__MODULE__{} = map, delta) when is_map(delta) or is_list(delta) do
    Enum.reduce(delta, {map, []}, fn {key, remote}, {map, acc} ->
      case Map.fetch(map.entries, key) do
        {:ok, local} ->
          joined = join_key(local, remote)

          if joined == local do
            {map, acc}
          else
            old = visible(local)
            {store(map, key, joined), diffs(key, old, visible(joined)) ++ acc}
          end

        :error ->
          {store(map, key, remote), diffs(key, :error, visible(remote)) ++ acc}
      end
    end)
  end

  @doc "The causal join of two states of one key."
  @spec join_key(key_state(), key_state()) :: key_state()
  def join_key({c1, a1} = same, {c2, a2}) when c1 == c2 and a1 == a2, do: same

  def join_key({c1, a1}, {c2, a2}) do
    context = Map.merge(c1, c2, fn _replica, x, y -> max(x, y) end)

    alive =
      a1
      |> Map.keys()
      |> Enum.concat(Map.keys(a2))
      |> Enum.uniq()
      |> Enum.reduce(%{}, fn replica, acc ->
        d1 = Map.get(a1, replica)
        d2 = Map.get(a2, replica)

        cond do
          d1 != nil and d2 != nil and elem(d1, 0) == elem(d2, 0) -> Map.put(acc, replica, d1)
          d1 != nil and elem(d1, 0) > Map.get(c2, replica, 0) -> Map.put(acc, replica, d1)
          d2 != nil and elem(d2, 0) > Map.get(c1, replica, 0) -> Map.put(acc, replica, d2)
          true -> acc
        end
      end)

    {context, alive}
  end

  @doc "The visible value at `key`: `{:ok, value}` or `:error`."
  @spec value(t(), term()) :: {:ok, term()} | :error
  def value(%__MODULE__{entries: entries}, key) do
    case Map.fetch(entries, key) do
      {:ok, key_state} -> visible(key_state)
      :error -> :error
    end
  end

  @doc "All visible key/value pairs."
  @spec to_map(t()) :: map()
  def to_map(%__MODULE__{entries: entries}) do
    for {key, key_state} <- entries, {:ok, value} <- [visible(key_state)], into: %{} do
      {key, value}
    end
  end

  @doc "The visible value of one key state."
  @spec visible(key_state()) :: {:ok, term()} | :error
  def visible({_context, alive}) when map_size(alive) == 0, do: :error

  def visible({_context, alive}) do
    {_replica, {_counter, _hlc, value}} =
      Enum.max_by(alive, fn {replica, {_counter, hlc, _value}} -> {hlc, replica} end)

    {:ok, value}
  end

  @doc "The greatest HLC timestamp in a delta (to advance the local clock)."
  @spec max_hlc(delta()) :: HLC.t() | nil
  def max_hlc(delta) do
    Enum.reduce(delta, nil, fn {_key, {_context, alive}}, acc ->
      Enum.reduce(alive, acc, fn {_replica, {_counter, hlc, _value}}, acc ->
        if acc == nil or hlc > acc, do: hlc, else: acc
      end)
    end)
  end

  ## Digests

  @doc "The root digest: equal roots mean equal contents."
  @spec root(t()) :: non_neg_integer()
  def root(%__MODULE__{root: root}), do: root

  @doc "Every bucket's digest as a binary of #{@buckets} big-endian 64-bit words."
  @spec bucket_digests(t()) :: binary()
  def bucket_digests(%__MODULE__{buckets: buckets}) do
    for b <- 0..(@buckets - 1), into: <<>>, do: <<Map.get(buckets, b, 0)::64>>
  end

  @doc "The digest of one bucket."
  @spec bucket_digest(t(), non_neg_integer()) :: non_neg_integer()
  def bucket_digest(%__MODULE__{buckets: buckets}, bucket), do: Map.get(buckets, bucket, 0)

  @doc "The buckets whose digests differ from `remote` (a `bucket_digests/1` binary)."
  @spec differing_buckets(t(), binary()) :: [non_neg_integer()]
  def differing_buckets(%__MODULE__{buckets: buckets}, remote)
      when byte_size(remote) == @buckets * 8 do
    for {<<digest::64>>, b} <- Enum.with_index(chunk_words(remote)),
        Map.get(buckets, b, 0) != digest,
        do: b
  end

  defp chunk_words(binary), do: for(<<word::binary-8 <- binary>>, do: word)

  @doc "The key states held in `buckets`, as a list of `{key, key_state}`."
  @spec entries_in(t(), [non_neg_integer()]) :: [{term(), key_state()}]
  def entries_in(%__MODULE__{}, []), do: []

  def entries_in(%__MODULE__{entries: entries}, buckets) when length(buckets) == @buckets,
    do: Map.to_list(entries)

  def entries_in(%__MODULE__{entries: entries}, buckets) do
    wanted = MapSet.new(buckets)
    Enum.filter(entries, fn {key, _} -> MapSet.member?(wanted, bucket(key)) end)
  end

  @doc "The bucket of `key`."
  @spec bucket(term()) :: non_neg_integer()
  def bucket(key), do: :erlang.phash2(key, @buckets)

  ## Internals

  defp store(map, key, key_state) do
    new_hash = hash(key, key_state)
    old_hash = Map.get(map.hashes, key, 0)
    b = bucket(key)
    delta = new_hash - old_hash

    %__MODULE__{
      entries: Map.put(map.entries, key, key_state),
      hashes: Map.put(map.hashes, key, new_hash),
      buckets: Map.put(map.buckets, b, band(Map.get(map.buckets, b, 0) + delta)),
      root: band(map.root + delta)
    }
  end

  defp band(n), do: Bitwise.band(n, @mask)

  # The dots identify the writes (and so the values): hash key, context, dots.
  # Two differently framed phash2 (stable across machines and OTP releases)
  # make 64 bits; a digest, not a security boundary (distribution is trusted).
  defp hash(key, {context, alive}) do
    dots = for {replica, {counter, _hlc, _value}} <- alive, do: {replica, counter}
    term = {key, Enum.sort(context), Enum.sort(dots)}
    Bitwise.bor(Bitwise.bsl(:erlang.phash2(term, @word), 32), :erlang.phash2({term}, @word))
  end

  defp diffs(_key, same, same), do: []
  defp diffs(key, _old, {:ok, value}), do: [{:put, key, value}]
  defp diffs(key, {:ok, _}, :error), do: [{:delete, key}]
end
